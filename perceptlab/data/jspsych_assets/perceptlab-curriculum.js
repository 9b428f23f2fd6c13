// PerceptLab jsPsych 8 runtime of the learning-experiment export (an L-WISE curriculum or its control),
// copied unchanged into every such export (README.md explains it). It reads PERCEPTLAB_CONFIG and
// PERCEPTLAB_TRIALS (the design's choice trials in presentation order) from timeline.js, builds on
// perceptlab-save.js (loaded before it) and defines:
//   perceptlabTimeline(jsPsych)  per trial a fixation cross, the image (hidden after stimulus_ms) with one
//     button per class (number keys too), and on feedback trials "Correct" / "Incorrect — it was X" right after the choice;
//     a message opens the test phase (no feedback); fixation and image are frame-locked
//   PerceptLabCurriculum.run({subject})  starts it with lab-safe data handling (as the library export).
"use strict";

function perceptlabTimeline(jsPsych) {
  const C = PERCEPTLAB_CONFIG;
  const timeline = perceptlabOpening(C, PERCEPTLAB_TRIALS.map((t) => t.stimulus),
    `<p>${C.instructions_html}</p><p>Press any key to start.</p>`);
  let phase = null;
  let via = () => "click";
  for (const t of PERCEPTLAB_TRIALS) {
    if (t.phase === "test" && phase !== "test") {
      timeline.push({
        type: jsPsychHtmlKeyboardResponse,
        stimulus: "<p>Now the test: you will no longer be told whether you were right.</p><p>Press any key.</p>",
        record_data: false,
      });
    }
    phase = t.phase;
    if (C.fixation_ms > 0) timeline.push(perceptlabFixation(jsPsych, C.fixation_ms));
    timeline.push({
      type: jsPsychImageButtonResponse,
      stimulus: t.stimulus,
      stimulus_duration: null, // frame-locked below
      stimulus_height: C.image_px,
      stimulus_width: C.image_px,
      render_on_canvas: false,
      choices: C.classes,
      button_html: perceptlabButtonHtml(C.keys),
      response_ends_trial: true,
      data: {
        task: "choice", trial_id: t.trial_id, stimulus_id: t.stimulus_id, true_label: t.true_label,
        block: t.block, phase: t.phase, feedback: t.feedback, eps: t.eps, condition: t.condition,
        order_seed: t.order_seed, intended_fixation_ms: C.fixation_ms, intended_stimulus_ms: C.stimulus_ms,
      },
      on_load: () => {
        via = perceptlabKeyAnswers(jsPsych, C.keys, "#jspsych-image-button-response-btngroup");
        perceptlabImageOn("#jspsych-image-button-response-stimulus", C.stimulus_ms);
      },
      on_finish: (data) => {
        data.response_label = data.response === null ? null : C.classes[data.response];
        data.correct = data.response_label === t.true_label;
        data.response_via = via();
        perceptlabMeasured(data, C.fixation_ms, C.stimulus_ms, perceptlabFrames.image_off);
      },
    });
    if (t.feedback) {
      timeline.push({
        type: jsPsychHtmlKeyboardResponse,
        stimulus: () => {
          const last = jsPsych.data.get().last(1).values()[0];
          return last.correct
            ? '<p style="color: #1a7f37; font-size: 32px;">Correct</p>'
            : `<p style="color: #cf222e; font-size: 32px;">Incorrect — it was ${t.true_label}</p>`;
        },
        choices: "NO_KEYS",
        trial_duration: C.feedback_ms,
        data: { task: "feedback", trial_id: t.trial_id },
        record_data: false,
      });
    }
  }
  return perceptlabClosing(C, timeline);
}

const PerceptLabCurriculum = {
  run: (opts) => {
    const s = PerceptLabSave.start({
      config: PERCEPTLAB_CONFIG,
      subject: opts.subject,
      properties: (s) => ({ participant: s.subject, subject: s.subject, session_id: s.session,
        experiment_id: PERCEPTLAB_CONFIG.experiment_id }),
      timeline: perceptlabTimeline,
      filter: { task: "choice" },
    });
    window.perceptlabJsPsych = s.jsPsych; // for tests and the console
    return s;
  },
};
