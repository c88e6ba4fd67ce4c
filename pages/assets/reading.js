// The reading room's script: the viewer (each slice rendered once by the
// DICOMweb API and held decoded, so scrolling costs no request), the
// request form, the report editor (autosaved draft, preliminary, signature
// with the password, addenda), critical results and messages, all through
// the JSON API with the session's CSRF token. Live through the event
// stream. No inline code: the content security policy allows this file.
(function () {
  "use strict";
  var root = document.getElementById("reading");
  if (!root) return;
  var study = root.dataset.study;
  var L = JSON.parse(root.dataset.labels || "{}");
  // A report is written by the radiologist who claimed the study; others
  // read what was issued.
  var writes = root.dataset.writes === "true" && root.dataset.claimed === "true";
  var mayClaim = root.dataset.writes === "true" && !writes;
  var csrf = document.body.dataset.csrf || "";

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) {
      if (key === "text") node.textContent = attributes[key];
      else node.setAttribute(key, attributes[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function signIn() {
    window.location.href = "/login?expired=1&next=" +
      encodeURIComponent(window.location.pathname + window.location.search);
  }

  // A JSON API call: the answer's body, or a rejection with its message.
  function api(method, path, body) {
    var headers = { "Accept": "application/json", "Accept-Language": window.teleradLang || "fr" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }, function () {
      // The browser's own words for a lost connection are English.
      throw new Error(L.network_error);
    }).then(function (response) {
      if (response.status === 401) { signIn(); throw new Error(L.signed_out); }
      return response.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        if (!response.ok) {
          var error = new Error(window.teleradRefusal(response.status, json || {}));
          error.status = response.status;
          throw error;
        }
        return json;
      });
    });
  }

  // Runs `action` (a promise) with `button` disabled until it settles: a
  // double click does not flag a result or add an addendum twice.
  function once(button, action) {
    if (button.disabled) return;
    button.disabled = true;
    action().catch(function () {}).then(function () { button.disabled = false; });
  }

  function when(ms) {
    var date = new Date(Number(ms));
    return date.toLocaleString(document.documentElement.lang || undefined,
      { dateStyle: "short", timeStyle: "short" });
  }
  document.querySelectorAll("[data-at]").forEach(function (node) {
    node.textContent = when(Date.parse(node.dataset.at) || node.dataset.at);
  });

  // ---------------------------------------------------------------- viewer
  var PRESETS = {
    brain: [40, 80], stroke: [40, 40], subdural: [75, 215], bone: [600, 2800],
    lung: [-600, 1500], mediastinum: [50, 350], abdomen: [40, 400], liver: [60, 160]
  };
  var canvas = document.getElementById("frame");
  var stage = document.getElementById("stage");
  var context = canvas.getContext("2d");
  var view = {
    series: null, slices: [], bitmaps: [], index: 0, window: null, stored: null,
    generation: 0, loaded: 0, tool: "stack", zoom: 1, panX: 0, panY: 0
  };

  function first(item, tag) {
    var element = item[tag];
    return element && element.Value && element.Value.length ? element.Value[0] : null;
  }

  function frameUrl(slice, windowText) {
    var url = "/dicom-web/studies/" + study + "/series/" + view.series + "/instances/" +
      slice.uid + "/rendered";
    return windowText ? url + "?window=" + windowText : url;
  }

  function windowText() {
    return view.window ? view.window[0] + "," + view.window[1] : null;
  }

  function overlay() {
    var n = view.slices.length;
    var slice = view.slices[view.index];
    var text = n ? (L.slice + " " + (view.index + 1) + " / " + n) : "";
    if (slice && slice.location !== null) text += "\n" + slice.location.toLocaleString(document.documentElement.lang || undefined,
      { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + " mm";
    document.getElementById("overlay-slice").textContent = text;
    var shown = view.window || view.stored;
    document.getElementById("overlay-window").textContent = shown
      ? L.window_letters[0] + " " + Math.round(shown[1]) + " / " + L.window_letters[1] + " " + Math.round(shown[0]) : "";
    document.getElementById("overlay-progress").textContent = view.loaded < n
      ? L.loading + " " + view.loaded + " / " + n : "";
    stage.dataset.slice = String(view.index + 1);
  }

  function draw() {
    var bitmap = view.bitmaps[view.index];
    overlay();
    if (!bitmap) {
      // Never another slice's pixels under this slice's number.
      context.clearRect(0, 0, canvas.width, canvas.height);
      return;
    }
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    context.drawImage(bitmap, 0, 0);
    stage.dataset.drawn = String(Number(stage.dataset.drawn || 0) + 1);
    if (!document.body.dataset.firstImageMs) {
      // From the page's opening (navigation start), for the benchmark.
      document.body.dataset.firstImageMs = String(Math.round(performance.now()));
    }
  }

  function transform() {
    canvas.style.transform = "translate(" + view.panX + "px," + view.panY + "px) scale(" + view.zoom + ")";
  }

  // Every slice, the one shown first and then outwards from it, six at a
  // time; a newer load (another series, another window) stops an older one.
  function loadStack() {
    var generation = ++view.generation;
    var n = view.slices.length;
    view.bitmaps.forEach(function (b) { if (b && b.close) b.close(); });
    view.bitmaps = new Array(n);
    view.loaded = 0;
    stage.dataset.ready = "";
    var order = [];
    for (var step = 0; order.length < n; step++) {
      if (view.index + step < n) order.push(view.index + step);
      if (step > 0 && view.index - step >= 0) order.push(view.index - step);
    }
    var text = windowText();
    function next() {
      if (generation !== view.generation || !order.length) return Promise.resolve();
      var i = order.shift();
      return fetch(frameUrl(view.slices[i], text), { credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) { signIn(); throw new Error("signed out"); }
          if (!response.ok) throw new Error(response.status);
          return response.blob();
        })
        .then(function (blob) { return createImageBitmap(blob); })
        .then(function (bitmap) {
          if (generation !== view.generation) { bitmap.close(); return; }
          view.bitmaps[i] = bitmap;
          view.loaded += 1;
          if (i === view.index) draw(); else overlay();
          if (view.loaded === n) {
            stage.dataset.ready = "1";
            document.body.dataset.stackMs = String(Math.round(performance.now()));
          }
        })
        .catch(function () { /* the slice stays blank; the overlay counts it */ })
        .then(next);
    }
    for (var k = 0; k < 6; k++) next();
  }

  function openSeries(seriesUid) {
    document.querySelectorAll("button.series").forEach(function (b) {
      b.classList.toggle("chosen", b.dataset.series === seriesUid);
    });
    view.series = seriesUid;
    var generation = ++view.generation;
    // The series' metadata (built at ingest) gives the order and where
    // each slice lies.
    fetch("/dicom-web/studies/" + study + "/series/" + seriesUid + "/metadata",
      { credentials: "same-origin", headers: { "Accept": "application/dicom+json" } })
      .then(function (response) {
        if (response.status === 401) { signIn(); throw new Error("signed out"); }
        return response.json();
      })
      .then(function (items) {
        // Another series was opened meanwhile: its answer wins.
        if (generation !== view.generation) return;
        var slices = items.map(function (item) {
          var position = item["00200032"] && item["00200032"].Value;
          var location = first(item, "00201041");
          if (location === null && position && position.length === 3) location = Number(position[2]);
          return {
            uid: first(item, "00080018"),
            number: first(item, "00200013"),
            location: location === null ? null : Number(location),
            center: first(item, "00281050"),
            width: first(item, "00281051")
          };
        }).filter(function (s) { return s.uid; });
        slices.sort(function (a, b) {
          if (a.number === null || b.number === null) return a.number === null ? 1 : -1;
          return Number(a.number) - Number(b.number);
        });
        view.slices = slices;
        view.index = 0;
        var withWindow = slices.filter(function (s) { return s.center !== null && s.width !== null; })[0];
        view.stored = withWindow ? [Number(withWindow.center), Number(withWindow.width)] : null;
        loadStack();
      })
      .catch(function () { overlay(); });
  }

  function go(index) {
    var n = view.slices.length;
    if (!n) return;
    view.index = Math.max(0, Math.min(n - 1, index));
    draw();
  }

  function setWindow(center, width) {
    view.window = [center, Math.max(1, width)];
    loadStack();
  }

  function setTool(tool) {
    view.tool = tool;
    document.querySelectorAll("button.tool[data-tool]").forEach(function (b) {
      b.classList.toggle("chosen", b.dataset.tool === tool);
    });
  }
  setTool("stack");

  document.querySelectorAll("button.series").forEach(function (button) {
    button.addEventListener("click", function () { openSeries(button.dataset.series); });
  });
  document.querySelectorAll("button.tool").forEach(function (button) {
    button.addEventListener("click", function () {
      if (button.dataset.reset) {
        view.zoom = 1; view.panX = 0; view.panY = 0; transform();
        view.window = null; loadStack();
      } else {
        setTool(button.dataset.tool);
      }
    });
  });
  document.querySelectorAll("button.preset").forEach(function (button) {
    button.addEventListener("click", function () {
      var preset = PRESETS[button.dataset.preset];
      if (preset) setWindow(preset[0], preset[1]);
    });
  });

  stage.addEventListener("wheel", function (event) {
    event.preventDefault();
    if (event.ctrlKey) {
      view.zoom = Math.max(0.25, Math.min(8, view.zoom * (event.deltaY < 0 ? 1.1 : 1 / 1.1)));
      transform();
    } else {
      go(view.index + (event.deltaY > 0 ? 1 : -1));
    }
  }, { passive: false });

  stage.addEventListener("keydown", function (event) {
    var keys = {
      ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1,
      PageDown: 10, PageUp: -10
    };
    if (keys[event.key]) { go(view.index + keys[event.key]); event.preventDefault(); }
    else if (event.key === "Home") { go(0); event.preventDefault(); }
    else if (event.key === "End") { go(view.slices.length - 1); event.preventDefault(); }
    else if (event.key === "+" || event.key === "=") { view.zoom = Math.min(8, view.zoom * 1.2); transform(); }
    else if (event.key === "-") { view.zoom = Math.max(0.25, view.zoom / 1.2); transform(); }
  });

  // Dragging: the chosen tool. The window follows the pointer on the slice
  // shown (one rendering in flight at a time), the whole stack once let go.
  var drag = null;
  var preview = { busy: false, wanted: null };
  function previewWindow() {
    if (preview.busy || !preview.wanted || !view.slices.length) return;
    var wanted = preview.wanted;
    var generation = view.generation;
    preview.wanted = null;
    preview.busy = true;
    fetch(frameUrl(view.slices[view.index], wanted[0] + "," + wanted[1]), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.blob() : null; })
      .then(function (blob) { return blob ? createImageBitmap(blob) : null; })
      .then(function (bitmap) {
        if (bitmap && drag && generation === view.generation) {
          context.drawImage(bitmap, 0, 0);
          stage.dataset.previews = String(Number(stage.dataset.previews || 0) + 1);
        }
        if (bitmap) bitmap.close();
      })
      .catch(function () { /* the next move asks again */ })
      .then(function () { preview.busy = false; previewWindow(); });
  }
  stage.addEventListener("pointerdown", function (event) {
    stage.focus();
    stage.setPointerCapture(event.pointerId);
    var shown = view.window || view.stored || [40, 400];
    drag = { x: event.clientX, y: event.clientY, index: view.index, panX: view.panX,
      panY: view.panY, center: shown[0], width: shown[1], moved: false, window: null };
  });
  stage.addEventListener("pointermove", function (event) {
    if (!drag) return;
    var dx = event.clientX - drag.x;
    var dy = event.clientY - drag.y;
    drag.moved = drag.moved || Math.abs(dx) + Math.abs(dy) > 2;
    if (view.tool === "stack") {
      go(drag.index + Math.round(dy / 4));
    } else if (view.tool === "pan") {
      view.panX = drag.panX + dx; view.panY = drag.panY + dy; transform();
    } else {
      var scale = Math.max(1, drag.width / 200);
      drag.window = [Math.round(drag.center + dy * scale), Math.max(1, Math.round(drag.width + dx * scale))];
      document.getElementById("overlay-window").textContent =
        L.window_letters[0] + " " + drag.window[1] + " / " + L.window_letters[1] + " " + drag.window[0];
      preview.wanted = drag.window;
      previewWindow();
    }
  });
  function endDrag() {
    if (drag && drag.window) setWindow(drag.window[0], drag.window[1]);
    drag = null;
  }
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);

  var firstSeries = document.querySelector("button.series");
  if (firstSeries) openSeries(firstSeries.dataset.series);

  // ---------------------------------------------------------- request form
  function showForm() {
    var box = document.getElementById("form");
    api("GET", "/api/studies/" + study + "/form").then(function (shown) {
      var form = shown.form || {};
      var list = el("dl", { "class": "form-fields" });
      Object.keys(L.form_fields).forEach(function (key) {
        var value = form[key];
        if (value === null || value === undefined || value === "") return;
        if (key === "symptom_onset") value = when(Date.parse(value));
        if (typeof value === "boolean") value = value ? "✓" : "✗";
        if (typeof value === "number") value = value.toLocaleString(document.documentElement.lang || undefined);
        var answer = (L.form_values || []).filter(function (pair) { return pair[0] === value; })[0];
        if (answer && (key === "urgency" || key === "pregnancy")) value = answer[1];
        list.appendChild(el("dt", { text: L.form_fields[key] }));
        list.appendChild(el("dd", { text: String(value) }));
      });
      box.replaceChildren(list);
    }).catch(function (error) {
      box.replaceChildren(el("p", { "class": error.status === 404 ? "warn" : "error",
        text: error.status === 404 ? L.no_form : error.message }));
    });
  }

  // --------------------------------------------------------------- report
  var report = { templates: [], view: null, template: null, dirty: false, timer: null, saving: null };
  var reportBox = document.getElementById("report");

  // A template's words in the page's language, if the server gave them:
  // what is stored (ids, option values) stays the template's own.
  function words(templateId) {
    return (L.templates || []).filter(function (w) { return w.template === templateId; })[0] || null;
  }

  function fieldInput(field, value, shown) {
    var input;
    if (field.type === "choice") {
      input = el("select", {}, [el("option", { value: "", text: "—" })].concat(
        (field.options || []).map(function (option, i) {
          var text = shown && shown.options && shown.options[i] ? shown.options[i] : option;
          return el("option", { value: option, text: text });
        })));
    } else if (field.type === "text") {
      input = el("textarea", { rows: field.id === "conclusion" ? "3" : "1" });
    } else {
      input = el("input", { type: field.type === "number" ? "number" : field.type });
      if (field.type === "number") {
        input.step = "any";
        if (field.min !== undefined && field.min !== null) input.min = field.min;
        if (field.max !== undefined && field.max !== null) input.max = field.max;
      }
    }
    input.name = field.id;
    input.dataset.kind = field.type;
    if (value !== undefined && value !== null) input.value = String(value);
    return input;
  }

  function content() {
    var fields = {};
    reportBox.querySelectorAll("[data-kind]").forEach(function (input) {
      var value = input.value.trim();
      if (value === "") fields[input.name] = null;
      else if (input.dataset.kind === "number") fields[input.name] = Number(value);
      else fields[input.name] = value;
    });
    var text = reportBox.querySelector("textarea[name='free-text']");
    return { template: report.template, fields: fields, text: text ? text.value : "" };
  }

  function status(text, isError) {
    var line = document.getElementById("report-status");
    if (!line) return;
    line.textContent = text;
    line.className = isError ? "error" : "hint";
  }

  function save() {
    clearTimeout(report.timer);
    if (!report.dirty) return report.saving || Promise.resolve();
    report.dirty = false;
    status(L.saving, false);
    report.saving = api("PUT", "/api/studies/" + study + "/report/draft", content())
      .then(function (view) {
        report.view = view;
        status(L.saved + " " + when(Date.now()), false);
        document.body.dataset.draftSaves = String(Number(document.body.dataset.draftSaves || 0) + 1);
      })
      .catch(function (error) { report.dirty = true; status(error.message, true); throw error; });
    return report.saving;
  }

  function changed() {
    report.dirty = true;
    clearTimeout(report.timer);
    report.timer = setTimeout(function () { save().catch(function () {}); }, 800);
  }

  function kindName(kind) {
    var found = (L.kinds || []).filter(function (pair) { return pair[0] === kind; })[0];
    return found ? found[1] : kind;
  }

  function lastVersion(kind) {
    var versions = (report.view && report.view.versions) || [];
    for (var i = versions.length - 1; i >= 0; i--) {
      if (!kind || versions[i].kind === kind) return versions[i];
    }
    return null;
  }

  function renderReport() {
    var view = report.view;
    var children = [];
    var reportStatus = view ? view.status : "none";
    var signed = reportStatus === "final" || reportStatus === "addendum";
    var start = view && view.draft ? view.draft.content : (lastVersion("preliminary") || {}).content;
    if (!report.template) {
      report.template = (start && start.template) || (view && view.template) || "free-text";
    }
    if (writes && !signed) {
      var chooser = el("select", { name: "template-choice" }, report.templates.map(function (t) {
        var option = el("option", { value: t.id, text: (words(t.id) || t).title });
        if (t.id === report.template) option.selected = true;
        return option;
      }));
      chooser.disabled = Boolean(view && view.versions && view.versions.length);
      chooser.addEventListener("change", function () { report.template = chooser.value; renderReport(); changed(); });
      children.push(el("label", { "class": "inline", text: L.template + " " }, [chooser]));
      var template = report.templates.filter(function (t) { return t.id === report.template; })[0];
      var values = (start && start.template === report.template && start.fields) || {};
      var translated = template ? words(template.id) : null;
      (template ? template.sections : []).forEach(function (section) {
        var sectionTitle = translated && translated.sections[section.id] || section.title;
        var set = el("fieldset", {}, [el("legend", { text: sectionTitle })]);
        section.fields.forEach(function (field) {
          var shown = translated ? translated.fields[field.id] : null;
          var label = el("label", { text: (shown ? shown.label : field.label) +
            (field.unit ? " (" + field.unit + ")" : "") + (field.rule === "required" ? " *" : "") });
          label.appendChild(fieldInput(field, values[field.id], shown));
          set.appendChild(label);
        });
        children.push(set);
      });
      var free = el("textarea", { name: "free-text", rows: "4" });
      free.value = (start && start.text) || "";
      children.push(el("label", { text: L.free_text }, [free]));
      children.push(el("p", { id: "report-status", "class": "hint" }));
      var preliminary = el("button", { type: "button", id: "issue-preliminary", text: L.issue_preliminary });
      preliminary.addEventListener("click", function () {
        once(preliminary, function () {
          report.dirty = true;
          return save().then(function () {
            return api("POST", "/api/studies/" + study + "/report/preliminary");
          }).then(function (answer) { report.view = answer; renderReport(); })
            .catch(function (error) { status(error.message, true); });
        });
      });
      var password = el("input", { type: "password", name: "sign-password", autocomplete: "current-password" });
      var sign = el("button", { type: "button", id: "sign-final", text: L.sign_final });
      sign.addEventListener("click", function () {
        once(sign, function () {
          report.dirty = report.dirty || Boolean(report.view && report.view.draft);
          var chain = report.dirty ? save() : Promise.resolve();
          return chain.then(function () {
            var draft = report.view && report.view.draft;
            var read = draft ? draft.content_hash : (lastVersion("preliminary") || {}).content_hash;
            return api("POST", "/api/studies/" + study + "/report/final",
              { password: password.value, read_hash: read });
          }).then(function (answer) { report.view = answer; renderReport(); })
            .catch(function (error) { status(error.message, true); });
        });
      });
      children.push(el("p", { "class": "actions" }, [preliminary]));
      children.push(el("p", { "class": "actions" }, [el("label", { text: L.sign_final + " " }, [password]), sign]));
    } else if (writes && signed) {
      var addendum = el("textarea", { name: "addendum", rows: "3" });
      var addPassword = el("input", { type: "password", name: "addendum-password", autocomplete: "current-password" });
      var add = el("button", { type: "button", id: "add-addendum", text: L.add_addendum });
      add.addEventListener("click", function () {
        once(add, function () {
          return api("POST", "/api/studies/" + study + "/report/addenda",
            { text: addendum.value, password: addPassword.value })
            .then(function (answer) { report.view = answer; renderReport(); })
            .catch(function (error) { status(error.message, true); });
        });
      });
      children.push(el("label", { text: L.add_addendum }, [addendum]));
      children.push(el("p", { "class": "actions" }, [addPassword, add]));
      children.push(el("p", { id: "report-status", "class": "hint" }));
    }
    if (mayClaim && !signed) children.push(el("p", { "class": "hint", text: L.claim_first }));
    var versions = (view && view.versions) || [];
    if (versions.length) {
      children.push(el("h3", { text: L.versions }));
      children.push(el("ol", { "class": "versions" }, versions.map(function (v) {
        var c = v.content || {};
        var summary = (c.fields && c.fields.conclusion) || c.text || "";
        return el("li", { "class": "version " + v.kind, "data-kind": v.kind }, [
          el("strong", { text: kindName(v.kind) + " " }),
          el("small", { text: v.signed_by + " · " + when(Date.parse(v.at) || v.at) }),
          el("p", { text: summary })
        ]);
      })));
    }
    reportBox.replaceChildren.apply(reportBox, children);
    reportBox.dataset.status = reportStatus;
    reportBox.querySelectorAll("input, select, textarea").forEach(function (input) {
      if (input.name === "template-choice" || input.type === "password" || input.name === "addendum") return;
      input.addEventListener("input", changed);
    });
  }

  function loadReport() {
    var templates = report.templates.length ? Promise.resolve(report.templates)
      : api("GET", "/api/report-templates");
    return templates.then(function (list) {
      report.templates = list || [];
      return api("GET", "/api/studies/" + study + "/report").catch(function (error) {
        if (error.status === 404) return null;
        throw error;
      });
    }).then(function (view) { report.view = view; renderReport(); })
      .catch(function (error) { reportBox.replaceChildren(el("p", { "class": "error", text: error.message })); });
  }

  // ------------------------------------------------------ critical results
  var criticalBox = document.getElementById("critical");
  function loadCritical() {
    api("GET", "/api/studies/" + study + "/critical-results").then(function (list) {
      var items = (list || []).map(function (c) {
        var state = c.acknowledgement
          ? L.acknowledged_by + " " + c.acknowledgement.by + " · " + when(Date.parse(c.acknowledgement.at))
          : L.waiting;
        return el("li", { "class": "critical-result " + c.state }, [
          el("strong", { text: c.category + " · " }), document.createTextNode(c.finding),
          el("br"), el("small", { text: state })
        ]);
      });
      var children = [el("ul", {}, items)];
      if (writes) {
        var category = el("select", { name: "category" }, [1, 2, 3].map(function (n) {
          return el("option", { value: String(n), text: String(n) });
        }));
        var finding = el("textarea", { name: "finding", rows: "2", maxlength: "2000" });
        var flag = el("button", { type: "button", id: "flag-critical", text: L.flag_critical });
        flag.addEventListener("click", function () {
          once(flag, function () {
            return api("POST", "/api/studies/" + study + "/critical-results",
              { category: Number(category.value), finding: finding.value })
              .then(loadCritical)
              .catch(function (error) { criticalBox.appendChild(el("p", { "class": "error", text: error.message })); });
          });
        });
        children.push(el("div", { "class": "stack" }, [
          el("label", { text: L.acr_category }, [category]), el("label", { text: L.finding }, [finding]), flag]));
      }
      criticalBox.replaceChildren.apply(criticalBox, children);
    }).catch(function (error) { criticalBox.replaceChildren(el("p", { "class": "error", text: error.message })); });
  }

  // -------------------------------------------------------------- messages
  var messagesBox = document.getElementById("messages");
  function loadMessages() {
    api("GET", "/api/studies/" + study + "/messages").then(function (thread) {
      messagesBox.replaceChildren(el("ol", { "class": "messages" }, (thread.messages || []).map(function (m) {
        var readers = (m.read_by || []).map(function (r) { return r.name; }).join(", ");
        return el("li", {}, [
          el("strong", { text: m.author.name + " " }),
          el("small", { text: when(Date.parse(m.sent_at)) + (readers ? " · " + L.read_by + " " + readers : "") }),
          el("p", { text: m.body })
        ]);
      })));
    }).catch(function (error) { messagesBox.replaceChildren(el("p", { "class": "error", text: error.message })); });
  }
  var messageForm = document.getElementById("message-form");
  messageForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = messageForm.elements.body.value;
    once(messageForm.querySelector("button"), function () {
      return api("POST", "/api/studies/" + study + "/messages", { body: body }).then(function () {
        messageForm.reset();
        loadMessages();
      }).catch(function (error) { messagesBox.appendChild(el("p", { "class": "error", text: error.message })); });
    });
  });

  showForm();
  loadReport();
  loadCritical();
  loadMessages();

  // Live: what others do to this study.
  if (window.EventSource) {
    var stream = new EventSource("/api/events/stream");
    var mine = function (handler) {
      return function (event) {
        try { if (JSON.parse(event.data).study_instance_uid !== study) return; } catch (e) { return; }
        handler();
      };
    };
    stream.addEventListener("message", mine(loadMessages));
    ["critical_result", "critical_escalated", "critical_acknowledged"].forEach(function (kind) {
      stream.addEventListener(kind, mine(loadCritical));
    });
    stream.addEventListener("form", mine(showForm));
    ["preliminary", "final", "addendum"].forEach(function (kind) {
      stream.addEventListener(kind, mine(function () { if (!report.dirty) loadReport(); }));
    });
    stream.onopen = function () { document.body.dataset.live = "1"; };
  }
  // The last edits, sent even as the page goes away.
  window.addEventListener("beforeunload", function () {
    if (!report.dirty || !report.template) return;
    fetch("/api/studies/" + study + "/report/draft", {
      method: "PUT",
      keepalive: true,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
      body: JSON.stringify(content())
    }).catch(function () {});
  });
})();
