// PerceptLab's lab-safe data handling and frame-locked timing, copied unchanged into every PerceptLab
// jsPsych 8 export (the library export's perceptlab-run.js, the mixup export's perceptlab-mixup.js and the
// learning export's perceptlab-curriculum.js build their trials on it). It defines:
//   perceptlabFrameLock(name, ms, end), perceptlabStampNextFrame(name), perceptlabFrames, perceptlabDiff
//     screens that end on the display frame nearest their intended end, and what the frames showed;
//   perceptlabKeyAnswers(jsPsych, keys, group), perceptlabButtonHtml(keys)  number keys for class buttons;
//   perceptlabOpening(C, images, instructions), perceptlabClosing(C, timeline), perceptlabFixation(jsPsych, ms),
//     perceptlabLockedScreen(jsPsych, name, ms, screen) (a frame-locked screen that takes no response),
//     perceptlabImageOn(selector, ms), perceptlabChoiceScreenOn(jsPsych, keys, stamp), perceptlabMeasured(d, fx, st, off)
//     the trial pieces every export's timeline is built from;
//   PerceptLabSave.init({config, subject})  a session: its rows go to localStorage (recover.html lists
//     and downloads them) and to the save hook (none | post | jatos | pavlovia) as they are made;
//   PerceptLabSave.record(row)  one answered trial (pass it as jsPsych's on_data_update);
//   PerceptLabSave.finish({rows, saveCsv})  the session is finished: the CSV download (saveCsv(name),
//     unless config.download is false), the thank-you page, the hook's final save;
//   PerceptLabSave.start({config, subject, timeline, properties, seed, filter})  all three around a
//     jsPsych run (window.perceptlabSession: the session, for tests and the console).
"use strict";

const PERCEPTLAB_PREFIX = "perceptlab:";
const PERCEPTLAB_QUEUE = "perceptlab-queue:";

// ------------------------------------------------------------------ timing against frames
// requestAnimationFrame callbacks run just before the frame that first shows a change made since the
// last frame is drawn, so the difference of two frame stamps is the time a screen was on (whole frames).
// A frame-locked screen ends in a task queued from the frame before the first one that should no longer
// show it (a jsPsych trial_duration 500 ms after the intended end is the fallback, e.g. while the tab is
// hidden and frames stop).
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

// ------------------------------------------------------------------ number keys for the buttons

function perceptlabKeyAnswers(jsPsych, keys, group) {
  // from a trial's on_load: keys[i] clicks the button data-choice=i inside `group` (null: no key);
  // returns a function telling how the trial was answered ("key" or "click")
  let via = "click";
  const valid = keys.filter((k) => k !== null);
  if (valid.length > 0) {
    jsPsych.pluginAPI.getKeyboardResponse({
      callback_function: (info) => {
        const i = keys.indexOf(info.key);
        const button = document.querySelector(`${group} [data-choice="${i}"]`);
        if (button !== null) {
          via = "key";
          button.click();
        }
      },
      valid_responses: valid,
      rt_method: "performance",
      persist: false,
      allow_held_key: false,
    });
  }
  return () => via;
}

function perceptlabButtonHtml(keys) {
  // button_html showing the key of a button where it is not the label itself
  return (choice, i) =>
    `<button class="jspsych-btn perceptlab-choice">${choice}` +
    (keys[i] !== null && keys[i] !== undefined && keys[i] !== choice ? ` <small>[${keys[i]}]</small>` : "") +
    "</button>";
}

// ------------------------------------------------------------------ trial pieces shared by the exports

function perceptlabOpening(C, images, instructionsHtml) {
  // a timeline's first trials: Pavlovia's init (with that hook), the preload of `images`, the instructions
  const timeline = [];
  if (C.save_hook === "pavlovia") timeline.push({ type: jsPsychPavlovia, command: "init" });
  timeline.push({ type: jsPsychPreload, images, show_detailed_errors: true, record_data: false });
  timeline.push({ type: jsPsychHtmlKeyboardResponse, stimulus: instructionsHtml, record_data: false });
  return timeline;
}

function perceptlabClosing(C, timeline) {
  // `timeline` ended with Pavlovia's finish (with that hook)
  if (C.save_hook === "pavlovia") timeline.push({ type: jsPsychPavlovia, command: "finish" });
  return timeline;
}

function perceptlabLockedScreen(jsPsych, name, ms, screen) {
  // a screen that takes no response and ends on the frame nearest ms after its first frame (stamping
  // perceptlabFrames[name]); `screen` gives the plugin type and what it shows
  return {
    ...screen,
    choices: "NO_KEYS",
    trial_duration: ms + 500,
    record_data: false,
    on_load: () => perceptlabFrameLock(name, ms, () => jsPsych.finishTrial({})),
  };
}

function perceptlabFixation(jsPsych, fixationMs) {
  // the fixation cross, frame-locked to fixationMs (stamps perceptlabFrames.fixation)
  return perceptlabLockedScreen(jsPsych, "fixation", fixationMs,
    { type: jsPsychHtmlKeyboardResponse, stimulus: '<div style="font-size: 60px;">+</div>' });
}

function perceptlabImageOn(selector, stimulusMs) {
  // from the on_load of a screen showing the image with its response: stamp the image's first frame and
  // hide the element `selector` on the frame nearest stimulusMs later (stamping image_off); 0: it stays
  perceptlabFrames.image_off = null;
  if (stimulusMs > 0) {
    perceptlabFrameLock("image", stimulusMs, () => {
      const el = document.querySelector(selector);
      if (el !== null) el.style.visibility = "hidden";
      perceptlabStampNextFrame("image_off");
    });
  } else {
    perceptlabFrames.screen += 1;
    perceptlabStampNextFrame("image");
  }
}

function perceptlabChoiceScreenOn(jsPsych, keys, stamp) {
  // from the on_load of an html-button choice screen: stamp its first frame as `stamp` ("image_off" after
  // a timed image, "image" when the image is on it) and answer by key; returns how it was answered
  perceptlabFrames.screen += 1;
  perceptlabStampNextFrame(stamp);
  return perceptlabKeyAnswers(jsPsych, keys, "#jspsych-html-button-response-btngroup");
}

function perceptlabMeasured(data, fixationMs, stimulusMs, stimulusOff) {
  // what the frames showed (null where that screen was not timed: 0 ms) and the row's time
  const f = perceptlabFrames;
  data.measured_fixation_ms = fixationMs > 0 ? perceptlabDiff(f.fixation, f.image) : null;
  data.measured_stimulus_ms = stimulusMs > 0 ? perceptlabDiff(f.image, stimulusOff) : null;
  data.timestamp_utc = new Date().toISOString();
}

// ------------------------------------------------------------------ lab-safe data

const PerceptLabSave = (() => {
  let current = null; // the running session

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

  function sessionKey(experimentId, subject, session) {
    return PERCEPTLAB_PREFIX + experimentId + ":" + subject + ":" + session;
  }

  // ---- the POST hook: a queue kept in localStorage until the server acknowledges (2xx) each item
  function makePost(C) {
    return {
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
  }

  function makeHook(C, post, meta) {
    if (C.save_hook === "post") {
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
    if (C.save_hook === "jatos") {
      // JATOS (jatos.js is served by JATOS itself): each row is appended to the result data as a JSON
      // line; at the end the whole data replace it (a JSON array) and the study ends.
      return {
        row: (row) => window.jatos && jatos.appendResultData(JSON.stringify(row) + "\n"),
        final: (rows) =>
          window.jatos ? Promise.resolve(jatos.submitResultData(JSON.stringify(rows))).then(() => jatos.endStudy())
            : Promise.resolve(),
      };
    }
    // none, and pavlovia: the Pavlovia plugin's "finish" trial saves the data (see the README)
    return { row: () => {}, final: () => Promise.resolve() };
  }

  function message(html) {
    document.body.innerHTML = '<div id="perceptlab-message" class="perceptlab-message">' + html + "</div>";
  }

  function init(opts) {
    // opts.config: experiment_id, title, save_hook, save_url, retry_base_ms, retry_max_ms, download
    // (and file_prefix, the download's name start); opts.subject: the participant id
    const C = opts.config;
    const subject = String(opts.subject);
    const session = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "") + "-" +
      Math.random().toString(36).slice(2, 6);
    const key = sessionKey(C.experiment_id, subject, session);
    const store = { format: "perceptlab-jspsych-session/1", experiment_id: C.experiment_id, title: C.title,
      subject, session_id: session, started: new Date().toISOString(), updated: null, finished: false, rows: [] };
    const stored = writeJSON(key, store);
    const post = makePost(C);
    const hook = makeHook(C, post, { key, subject, session });
    if (C.save_hook === "post") post.flush(); // rows an earlier, interrupted session left unsent
    current = { C, key, subject, session, stored, store, post, hook };
    return { key, subject, session, stored, post };
  }

  function record(row) {
    const s = readJSON(current.key, current.store);
    s.rows.push(row);
    s.updated = new Date().toISOString();
    writeJSON(current.key, s);
    current.hook.row(row);
  }

  function finish(opts) {
    // opts.rows: every row of the session (the hook's final save); opts.saveCsv(fileName): the download
    const { C, key, subject, hook } = current;
    const s = readJSON(key, current.store);
    s.finished = true;
    writeJSON(key, s);
    let said = "<h2>Thank you!</h2>";
    if (C.download) {
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      opts.saveCsv(`${C.file_prefix || "perceptlab"}_${subject}_${stamp}.csv`);
      said += "<p>Your responses were saved as a CSV file by your browser.</p>";
    }
    if (C.save_hook === "post") {
      message(said + '<p id="perceptlab-sending">Sending your responses… please keep this page open.</p>');
      current.post.listeners.push((left, err) => {
        const el = document.getElementById("perceptlab-sending");
        if (el && left > 0) el.textContent = `Sending your responses… ${left} left` + (err ? ` (retrying: ${err})` : "");
      });
    } else {
      message(said);
    }
    return Promise.resolve(hook.final(opts.rows)).then(() => {
      if (C.save_hook === "post") message(said + '<p id="perceptlab-saved">All responses were received by the server. You may close this page.</p>');
      else document.getElementById("perceptlab-message").insertAdjacentHTML("beforeend", '<p id="perceptlab-saved"></p>');
    });
  }

  function start(opts) {
    // a session run with jsPsych: opts.config, opts.subject; opts.timeline(jsPsych): the trials;
    // opts.properties(session, seed): what every row records about the session; opts.seed: the order
    // seed (a setSeed argument; the seed used goes to properties); opts.filter: the rows saved at the end
    const s = init({ config: opts.config, subject: opts.subject });
    let jsPsych = null;
    const data = () => (opts.filter ? jsPsych.data.get().filter(opts.filter) : jsPsych.data.get());
    jsPsych = initJsPsych({
      on_data_update: record,
      on_finish: () => finish({ rows: data().values(), saveCsv: (name) => data().localSave("csv", name) }),
    });
    const seed = "seed" in opts ? jsPsych.randomization.setSeed(opts.seed || undefined) : undefined;
    jsPsych.data.addProperties(opts.properties(s, seed));
    window.perceptlabSession = { ...s, ...(seed === undefined ? {} : { seed }), jsPsych };
    jsPsych.run(opts.timeline(jsPsych));
    return window.perceptlabSession;
  }

  return { init, record, finish, start, sessionKey, readJSON };
})();
