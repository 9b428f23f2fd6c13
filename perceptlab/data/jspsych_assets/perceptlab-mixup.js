// PerceptLab jsPsych 8 runtime of the mixup export, copied unchanged into every mixup export (README.md
// explains it). It reads PERCEPTLAB_CONFIG and PERCEPTLAB_TRIALS (the design's trials in presentation
// order) from timeline.js, builds on perceptlab-save.js (loaded before it) and defines:
//   perceptlabTimeline(jsPsych)  pick trials (the pair's images are the buttons), slider trials
//     (fixation -> image with a 0..100 slider, the image hidden after stimulus_ms), choice trials
//     (fixation -> image alone -> class buttons, number keys too), each slider / choice trial with confidence optionally
//     followed by a 1-5 rating; fixation and image are frame-locked
//   PerceptLabMixup.run({subject})  starts it with lab-safe data handling (as the library export).
"use strict";

function perceptlabTimeline(jsPsych) {
  const C = PERCEPTLAB_CONFIG;
  const px = C.image_px;
  const img = (src, id) =>
    `<img src="${src}"${id ? ` id="${id}"` : ""} width="${px}" height="${px}" style="image-rendering: pixelated;">`;
  const timed = (t) => t.kind !== "pick";
  const base = (t) => ({ perceptlab_kind: t.kind, perceptlab_trial: t.id, stimulus_id: t.stimulus, block: t.block,
    phase: t.phase, is_catch: t.is_catch, true_label: t.true_label, class_a: t.class_a, class_b: t.class_b,
    order_seed: C.order_seed,
    intended_fixation_ms: timed(t) ? C.fixation_ms : null, intended_stimulus_ms: timed(t) ? C.stimulus_ms : null });
  const measured = (d, t, stimulusOff) =>
    perceptlabMeasured(d, timed(t) ? C.fixation_ms : 0, timed(t) ? C.stimulus_ms : 0, stimulusOff);
  const fixation = perceptlabFixation(jsPsych, C.fixation_ms);
  const confidence = (t) => ({
    type: jsPsychHtmlButtonResponse,
    stimulus: "<p>How confident are you? (1 = guessing, 5 = certain)</p>",
    choices: ["1", "2", "3", "4", "5"],
    data: { ...base(t), perceptlab_kind: "confidence" },
    on_finish: (d) => {
      d.perceptlab_confidence = d.response === null ? null : d.response + 1;
      d.timestamp_utc = new Date().toISOString();
    },
  });
  const timeline = perceptlabOpening(C, PERCEPTLAB_TRIALS.flatMap((t) => t.images || [t.image]).filter(Boolean),
    `<p>${C.instructions_html}</p><p>Press any key to start.</p>`);
  for (const t of PERCEPTLAB_TRIALS) {
    if (t.kind === "pick") {
      timeline.push({
        type: jsPsychHtmlButtonResponse,
        stimulus: `<p>Which image is an even mix of <b>${t.class_a}</b> and <b>${t.class_b}</b>?</p>`,
        choices: t.images,
        button_html: (src) => `<button class="jspsych-btn perceptlab-pick">${img(src)}</button>`,
        data: base(t),
        on_finish: (d) => {
          d.perceptlab_response = d.response === null ? null : t.stimuli[d.response];
          d.perceptlab_lambda = d.response === null ? null : t.lambdas[d.response];
          measured(d, t, null);
        },
      });
      continue;
    }
    if (C.fixation_ms > 0) timeline.push(fixation);
    if (t.kind === "slider") {
      timeline.push({
        type: jsPsychImageSliderResponse,
        stimulus: t.image,
        stimulus_height: px,
        stimulus_width: px,
        render_on_canvas: false,
        stimulus_duration: null, // frame-locked below
        labels: [t.class_a, t.class_b],
        min: 0,
        max: 100,
        slider_start: 50,
        require_movement: true,
        prompt: `<p>How much <b>${t.class_a}</b> (left) and <b>${t.class_b}</b> (right)?</p>`,
        data: base(t),
        on_load: () => perceptlabImageOn("#jspsych-image-slider-response-stimulus", C.stimulus_ms),
        on_finish: (d) => {
          d.perceptlab_response = d.response === null ? null : d.response / 100;
          measured(d, t, perceptlabFrames.image_off);
        },
      });
    } else {
      const classes = t.classes || C.classes;
      const keys = t.keys || C.keys;
      let via = () => "click";
      if (C.stimulus_ms > 0) {
        timeline.push(perceptlabLockedScreen(jsPsych, "image", C.stimulus_ms,
          { type: jsPsychHtmlKeyboardResponse, stimulus: img(t.image, "perceptlab-mixup-image") }));
      }
      timeline.push({
        type: jsPsychHtmlButtonResponse,
        stimulus: C.stimulus_ms > 0 ? C.choice_prompt_html : img(t.image, "perceptlab-mixup-image") + C.choice_prompt_html,
        choices: classes,
        button_html: perceptlabButtonHtml(keys),
        data: base(t),
        on_load: () => {
          via = perceptlabChoiceScreenOn(jsPsych, keys, C.stimulus_ms > 0 ? "image_off" : "image");
        },
        on_finish: (d) => {
          d.perceptlab_response = d.response === null ? null : classes[d.response];
          d.response_via = via();
          measured(d, t, perceptlabFrames.image_off);
        },
      });
    }
    if (t.confidence) timeline.push(confidence(t));
  }
  return perceptlabClosing(C, timeline);
}

const PerceptLabMixup = {
  run: (opts) => PerceptLabSave.start({
    config: PERCEPTLAB_CONFIG,
    subject: opts.subject,
    properties: (s) => ({ subject: s.subject, session_id: s.session, experiment_id: PERCEPTLAB_CONFIG.experiment_id,
      design: PERCEPTLAB_CONFIG.design }),
    timeline: perceptlabTimeline,
  }),
};
