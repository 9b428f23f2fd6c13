// PerceptLab jsPsych 8 runtime, copied unchanged into every export (README.txt explains it).
// It reads PERCEPTLAB_CONFIG and PERCEPTLAB_STIMULI from timeline.js and defines:
//   perceptlabTimeline(jsPsych)  the trials (fixation -> image -> choice screen, or buttons with the image)
//   PerceptLab.run({subject, seed})  starts the experiment with lab-safe data handling:
//     every trial's row is appended to localStorage at once (recover.html lists and downloads it),
//     the save hook (none | post | jatos | pavlovia) sends rows on, the CSV download at the end stays.
"use strict";

const PERCEPTLAB_PREFIX = "perceptlab:";
const PERCEPTLAB_QUEUE = "perceptlab-queue:";

// ------------------------------------------------------------------ timing against frames
// requestAnimationFrame callbacks run just before the frame that first shows a change made since the
// last frame is drawn, so the difference of two frame stamps is the time a screen was on (whole frames).
// The fixation and the image are frame-locked: each ends in a task queued from the frame before the
// first one that should no longer show it (a timeout 500 ms after the intended end is the fallback,
// e.g. while the tab is hidden and frames stop).
const perceptlabFrames = { fixation: null, image: null, image_off: null, screen: 0, deltas: [] };

(function perceptlabFramePeriod() {
  let prev = null;
  const tick = (t) => {
    if (prev !== null && t - prev > 2 && t - prev < 100) {
      perceptlabFrames.deltas.push(t - prev);
      if (perceptlabFrames.deltas.length > 120) perceptlabFrames.deltas.shift();
    }
    prev = t;
    requestAnimationFrame(tick);
  };
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(tick);
})();

function perceptlabPeriod() {
  const d = [...perceptlabFrames.deltas].sort((a, b) => a - b);
  return d.length < 5 ? 1000 / 60 : d[Math.floor(d.length / 2)];
}

function perceptlabStampNextFrame(name) {
  perceptlabFrames[name] = null;
  requestAnimationFrame((t) => {
    perceptlabFrames[name] = t;
  });
}

function perceptlabFrameLock(name, intendedMs, end) {
  // stamp the first frame showing this screen in perceptlabFrames[name]; call end() so that the change
  // it makes is first drawn on the frame closest to onset + intendedMs
  const screen = ++perceptlabFrames.screen;
  perceptlabFrames[name] = null;
  const step = (t) => {
    if (screen !== perceptlabFrames.screen) return; // the screen ended already (fallback timeout)
    if (perceptlabFrames[name] === null) perceptlabFrames[name] = t;
    const period = perceptlabPeriod();
    if (t + period - perceptlabFrames[name] >= intendedMs - period / 2) {
      setTimeout(() => {
        if (screen === perceptlabFrames.screen) end();
      }, 0);
    } else {
      requestAnimationFrame(step);
    }
  };
  requestAnimationFrame(step);
}

function perceptlabDiff(a, b) {
  return a === null || b === null ? null : Math.round((b - a) * 10) / 10;
}

// ------------------------------------------------------------------ the timeline

function perceptlabTimeline(jsPsych) {
  const C = PERCEPTLAB_CONFIG;
  const tv = (name) => jsPsych.timelineVariable(name);
  const timeline = [];
  if (C.save_hook === "pavlovia") timeline.push({ type: jsPsychPavlovia, command: "init" });
  timeline.push({
    type: jsPsychPreload,
    images: PERCEPTLAB_STIMULI.map((s) => s.stimulus),
    show_detailed_errors: true,
    record_data: false,
  });
  timeline.push({
    type: jsPsychHtmlKeyboardResponse,
    stimulus: C.instructions_html,
    record_data: false,
  });
  const fixation = {
    type: jsPsychHtmlKeyboardResponse,
    stimulus: '<div style="font-size: 60px;">+</div>',
    choices: "NO_KEYS",
    trial_duration: C.fixation_ms + 500,
    record_data: false,
    on_load: () => perceptlabFrameLock("fixation", C.fixation_ms, () => jsPsych.finishTrial({})),
  };
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
    data.measured_fixation_ms = perceptlabDiff(perceptlabFrames.fixation, perceptlabFrames.image);
    data.measured_stimulus_ms = perceptlabDiff(perceptlabFrames.image, stimulusOff);
    data.timestamp_utc = new Date().toISOString();
  };
  const buttonHtml = (choice, i) =>
    `<button class="jspsych-btn perceptlab-choice">${choice}` +
    (C.keys[i] !== null && C.keys[i] !== choice ? ` <small>[${C.keys[i]}]</small>` : "") +
    "</button>";
  const grid = { button_layout: "grid", grid_rows: 1, grid_columns: C.classes.length };
  let trial;
  if (C.layout === "choice-screen") {
    const image = {
      type: jsPsychImageKeyboardResponse,
      stimulus: tv("stimulus"),
      stimulus_height: C.image_px,
      stimulus_width: C.image_px,
      render_on_canvas: false,
      choices: "NO_KEYS",
      trial_duration: C.stimulus_ms + 500,
      record_data: false,
      on_load: () => perceptlabFrameLock("image", C.stimulus_ms, () => jsPsych.finishTrial({})),
    };
    let via = "click";
    const choice = {
      type: jsPsychHtmlButtonResponse,
      stimulus: C.choice_prompt_html,
      choices: C.classes,
      button_html: buttonHtml,
      ...grid,
      data: rowData(),
      on_load: () => {
        perceptlabFrames.screen += 1;
        perceptlabStampNextFrame("image_off");
        via = "click";
        const keys = C.keys.filter((k) => k !== null);
        if (keys.length === 0) return;
        jsPsych.pluginAPI.getKeyboardResponse({
          callback_function: (info) => {
            const i = C.keys.indexOf(info.key);
            const button = document.querySelector(`#jspsych-html-button-response-btngroup [data-choice="${i}"]`);
            if (button !== null) {
              via = "key";
              button.click();
            }
          },
          valid_responses: keys,
          rt_method: "performance",
          persist: false,
          allow_held_key: false,
        });
      },
      on_finish: (data) => {
        finishRow(data, perceptlabFrames.image_off);
        data.response_via = via;
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
      on_load: () => {
        perceptlabFrames.image_off = null;
        perceptlabFrameLock("image", C.stimulus_ms, () => {
          const el = document.querySelector("#jspsych-image-button-response-stimulus");
          if (el !== null) el.style.visibility = "hidden";
          perceptlabStampNextFrame("image_off");
        });
      },
      on_finish: (data) => {
        finishRow(data, perceptlabFrames.image_off);
        data.response_via = "click";
      },
    };
    trial = [fixation, digit];
  }
  timeline.push({ timeline: trial, timeline_variables: PERCEPTLAB_STIMULI, randomize_order: true });
  if (C.save_hook === "pavlovia") timeline.push({ type: jsPsychPavlovia, command: "finish" });
  return timeline;
}

// ------------------------------------------------------------------ lab-safe data

const PerceptLab = (() => {
  const C = typeof PERCEPTLAB_CONFIG === "undefined" ? {} : PERCEPTLAB_CONFIG;

  function readJSON(key, fallback) {
    try {
      const text = localStorage.getItem(key);
      return text === null ? fallback : JSON.parse(text);
    } catch (err) {
      return fallback;
    }
  }

  function writeJSON(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
      return true;
    } catch (err) {
      console.error("PerceptLab: could not write to localStorage (" + err + ")");
      return false;
    }
  }

  function sessionKey(subject, session) {
    return PERCEPTLAB_PREFIX + C.experiment_id + ":" + subject + ":" + session;
  }

  // ---- the POST hook: a queue kept in localStorage until the server acknowledges (2xx) each item
  const post = {
    key: PERCEPTLAB_QUEUE + C.experiment_id,
    busy: false,
    timer: null,
    attempt: 0,
    sent: 0,
    lastError: null,
    listeners: [],
    queue() {
      return readJSON(this.key, []);
    },
    enqueue(item) {
      const q = this.queue();
      q.push(item);
      writeJSON(this.key, q);
      this.flush();
    },
    notify() {
      const left = this.queue().length;
      this.listeners.forEach((fn) => fn(left, this.lastError));
    },
    flush() {
      if (this.busy || this.timer !== null) return;
      const q = this.queue();
      if (q.length === 0) {
        this.notify();
        return;
      }
      this.busy = true;
      const item = q[0];
      fetch(C.save_url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(item),
        keepalive: JSON.stringify(item).length < 60000,
      })
        .then((response) => {
          if (!response.ok) throw new Error("HTTP " + response.status);
          const rest = this.queue().filter((x) => x.id !== item.id);
          writeJSON(this.key, rest);
          this.attempt = 0;
          this.sent += 1;
          this.lastError = null;
        })
        .catch((err) => {
          this.attempt += 1;
          this.lastError = String(err);
          const delay = Math.min(C.retry_max_ms, C.retry_base_ms * 2 ** (this.attempt - 1));
          this.timer = setTimeout(() => {
            this.timer = null;
            this.flush();
          }, delay);
        })
        .finally(() => {
          this.busy = false;
          this.notify();
          if (this.timer === null) this.flush();
        });
    },
    waitEmpty() {
      return new Promise((resolve) => {
        const check = (left) => {
          if (left === 0) {
            this.listeners = this.listeners.filter((fn) => fn !== check);
            resolve();
          }
        };
        this.listeners.push(check);
        this.flush();
      });
    },
  };

  function makeHook(kind, meta) {
    if (kind === "post") {
      let n = 0;
      const item = (what, body) => ({ id: `${meta.key}#${what}${what === "row" ? n++ : ""}`, kind: what,
        experiment_id: C.experiment_id, subject: meta.subject, session_id: meta.session, ...body });
      return {
        row: (row) => post.enqueue(item("row", { row })),
        final: (rows) => {
          post.enqueue(item("final", { rows }));
          return post.waitEmpty();
        },
      };
    }
    if (kind === "jatos") {
      // JATOS (jatos.js is served by JATOS itself): each row is appended to the result data as a JSON
      // line; at the end the whole data replace it (a JSON array) and the study ends.
      return {
        row: (row) => window.jatos && jatos.appendResultData(JSON.stringify(row) + "\n"),
        final: (rows) =>
          window.jatos ? Promise.resolve(jatos.submitResultData(JSON.stringify(rows))).then(() => jatos.endStudy())
            : Promise.resolve(),
      };
    }
    // none, and pavlovia: the Pavlovia plugin's "finish" trial saves the data (see README.txt)
    return { row: () => {}, final: () => Promise.resolve() };
  }

  function message(html) {
    document.body.innerHTML = '<div id="perceptlab-message" class="perceptlab-message">' + html + "</div>";
  }

  function run(opts) {
    const subject = String(opts.subject);
    const session = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "") + "-" +
      Math.random().toString(36).slice(2, 6);
    const key = sessionKey(subject, session);
    const store = { format: "perceptlab-jspsych-session/1", experiment_id: C.experiment_id, title: C.title,
      subject, session_id: session, started: new Date().toISOString(), updated: null, finished: false, rows: [] };
    const stored = writeJSON(key, store);
    const hook = makeHook(C.save_hook, { key, subject, session });
    if (C.save_hook === "post") post.flush(); // rows an earlier, interrupted session left unsent
    let jsPsych = null;
    jsPsych = initJsPsych({
      on_data_update: (row) => {
        const s = readJSON(key, store);
        s.rows.push(row);
        s.updated = new Date().toISOString();
        writeJSON(key, s);
        hook.row(row);
      },
      on_finish: () => {
        const s = readJSON(key, store);
        s.finished = true;
        writeJSON(key, s);
        const rows = jsPsych.data.get().values();
        let said = "<h2>Thank you!</h2>";
        if (C.download) {
          const stamp = new Date().toISOString().replace(/[:.]/g, "-");
          jsPsych.data.get().localSave("csv", `perceptlab_${subject}_${stamp}.csv`);
          said += "<p>Your responses were saved as a CSV file by your browser.</p>";
        }
        if (C.save_hook === "post") {
          message(said + '<p id="perceptlab-sending">Sending your responses… please keep this page open.</p>');
          post.listeners.push((left, err) => {
            const el = document.getElementById("perceptlab-sending");
            if (el && left > 0) el.textContent = `Sending your responses… ${left} left` + (err ? ` (retrying: ${err})` : "");
          });
        } else {
          message(said);
        }
        Promise.resolve(hook.final(rows)).then(() => {
          if (C.save_hook === "post") message(said + '<p id="perceptlab-saved">All responses were received by the server. You may close this page.</p>');
          else document.getElementById("perceptlab-message").insertAdjacentHTML("beforeend", '<p id="perceptlab-saved"></p>');
        });
      },
    });
    const seed = jsPsych.randomization.setSeed(opts.seed || undefined);
    jsPsych.data.addProperties({ subject, session_id: session, order_seed: seed, experiment_id: C.experiment_id,
      layout: C.layout });
    window.perceptlabSession = { key, subject, session, seed, stored, jsPsych, post };
    jsPsych.run(perceptlabTimeline(jsPsych));
    return window.perceptlabSession;
  }

  return { run, post, sessionKey };
})();
