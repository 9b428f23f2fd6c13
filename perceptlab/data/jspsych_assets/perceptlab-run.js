// PerceptLab jsPsych 8 runtime of the library export, copied unchanged into every export (README.txt
// explains it). It reads PERCEPTLAB_CONFIG and PERCEPTLAB_STIMULI from timeline.js, builds on
// perceptlab-save.js (loaded before it: lab-safe data handling, frame-locked timing) and defines:
//   perceptlabTimeline(jsPsych)  the trials (fixation -> image -> choice screen, or buttons with the image)
//   PerceptLab.run({subject, seed})  starts the experiment with lab-safe data handling:
//     every trial's row is appended to localStorage at once (recover.html lists and downloads it),
//     the save hook (none | post | jatos | pavlovia) sends rows on, the CSV download at the end stays.
"use strict";

// ------------------------------------------------------------------ the timeline

function perceptlabTimeline(jsPsych) {
  const C = PERCEPTLAB_CONFIG;
  const tv = (name) => jsPsych.timelineVariable(name);
  const timeline = perceptlabOpening(C, PERCEPTLAB_STIMULI.map((s) => s.stimulus), C.instructions_html);
  const fixation = perceptlabFixation(jsPsych, C.fixation_ms);
  const rowData = () => ({
    task: tv("task"),
    kind: "choice",
    stimulus_id: tv("stimulus_id"),
    image: tv("stimulus"),
    class_a: tv("class_a"),
    class_b: tv("class_b"),
    mode: tv("mode"),
    is_catch: tv("is_catch"),
    true_label: tv("true_label"),
    intended_fixation_ms: C.fixation_ms,
    intended_stimulus_ms: C.stimulus_ms,
  });
  const finishRow = (data, stimulusOff) => {
    data.stimulus = data.image; // the image path, also where the choice screen's own html would be
    delete data.image;
    data.response_label = data.response === null ? null : C.classes[data.response];
    perceptlabMeasured(data, C.fixation_ms, C.stimulus_ms, stimulusOff); // both > 0 in this export
  };
  const buttonHtml = perceptlabButtonHtml(C.keys);
  const grid = { button_layout: "grid", grid_rows: 1, grid_columns: C.classes.length };
  let trial;
  if (C.layout === "choice-screen") {
    const image = perceptlabLockedScreen(jsPsych, "image", C.stimulus_ms, {
      type: jsPsychImageKeyboardResponse,
      stimulus: tv("stimulus"),
      stimulus_height: C.image_px,
      stimulus_width: C.image_px,
      render_on_canvas: false,
    });
    let via = () => "click";
    const choice = {
      type: jsPsychHtmlButtonResponse,
      stimulus: C.choice_prompt_html,
      choices: C.classes,
      button_html: buttonHtml,
      ...grid,
      data: rowData(),
      on_load: () => {
        via = perceptlabChoiceScreenOn(jsPsych, C.keys, "image_off");
      },
      on_finish: (data) => {
        finishRow(data, perceptlabFrames.image_off);
        data.response_via = via();
      },
    };
    trial = [fixation, image, choice];
  } else {
    const digit = {
      type: jsPsychImageButtonResponse,
      stimulus: tv("stimulus"),
      stimulus_duration: null,
      stimulus_height: C.image_px,
      stimulus_width: C.image_px,
      render_on_canvas: false,
      choices: C.classes,
      button_html: buttonHtml,
      ...grid,
      response_ends_trial: true,
      data: rowData(),
      on_load: () => perceptlabImageOn("#jspsych-image-button-response-stimulus", C.stimulus_ms),
      on_finish: (data) => {
        finishRow(data, perceptlabFrames.image_off);
        data.response_via = "click";
      },
    };
    trial = [fixation, digit];
  }
  timeline.push({ timeline: trial, timeline_variables: PERCEPTLAB_STIMULI, randomize_order: true });
  return perceptlabClosing(C, timeline);
}

// ------------------------------------------------------------------ running it

const PerceptLab = (() => {
  function run(opts) {
    const C = PERCEPTLAB_CONFIG;
    return PerceptLabSave.start({
      config: C,
      subject: opts.subject,
      seed: opts.seed,
      properties: (s, seed) => ({ subject: s.subject, session_id: s.session, order_seed: seed,
        experiment_id: C.experiment_id, layout: C.layout }),
      timeline: perceptlabTimeline,
    });
  }

  return { run, sessionKey: (subject, session) => PerceptLabSave.sessionKey(PERCEPTLAB_CONFIG.experiment_id, subject, session) };
})();
