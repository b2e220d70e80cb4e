/* Ranking widget: order K responses into ranks (tiers), best first, by keyboard, mouse or touch.
 *
 * State is a list of tiers (each a list of response ids; more than one id is a tie) plus the
 * unranked pool. Ranks are always compact: rank 1 is tiers[0]. The widget writes the weak order
 * as JSON into the form's hidden "ranking" field after every change, and keeps a draft (tiers,
 * rationale, flags, submission id, start time) in sessionStorage under the assignment id, so a
 * reload or a failed request never loses work. No dependencies; htmx swaps in the next item.
 *
 * Places to put a response: a rank (ties with what is there, where ties are allowed), a gap
 * between two ranks (inserts a new rank; the ranks below move down) or the unranked pool. A
 * response gets there by dragging its handle, by tapping (clicking) it and then the place (no
 * long drag across a phone screen), or by keys: 1-9, two quick digits for 10-16, Alt+arrows.
 */
(function () {
  "use strict";

  var DRAFT_PREFIX = "rlchf:ranking:";
  var MAX_SECONDS = 24 * 60 * 60;  // annotation.forms.MAX_SECONDS
  var SECOND_DIGIT_MS = 800;  // "1" then "2" within this time is rank 12 (items of 10 or more responses)

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  function announce(text) {
    var live = document.getElementById("ranking-live");
    if (!live) {
      live = document.createElement("div");
      live.id = "ranking-live";
      live.className = "visually-hidden";
      live.setAttribute("role", "status");
      live.setAttribute("aria-live", "polite");
      document.body.appendChild(live);
    }
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 30);
  }

  function RankingWidget(form) {
    this.form = form;
    this.key = DRAFT_PREFIX + form.dataset.assignment;
    this.project = form.dataset.project;
    this.allowTies = form.dataset.allowTies === "true";
    this.allowPartial = form.dataset.allowPartial === "true";
    this.rationaleRequired = form.dataset.rationale === "required";
    this.cards = {};
    this.ids = [];
    var self = this;
    form.querySelectorAll(".response-card").forEach(function (card) {
      self.cards[card.dataset.response] = card;
      self.ids.push(card.dataset.response);
    });
    this.slotEls = Array.prototype.slice.call(form.querySelectorAll(".rank-slot"));
    this.gapEls = this.slotEls.map(function (slot, i) { return self.makeGap(slot, i); });
    this.poolEl = form.querySelector(".rank-pool .slot-cards");
    this.errorEl = form.querySelector("#ranking-error");
    this.hintEl = form.querySelector("[data-tap-hint]");
    this.selected = null;
    this.pendingDigit = null;
    this.tiers = [];
    this.restore();
    this.dropStaleDrafts();
    this.render();
    this.bind();
    form.dataset.ready = "true";  // for tests and styles: the widget is live
  }

  /* A drop target before rank slot i: putting a response there inserts a new rank i + 1. */
  RankingWidget.prototype.makeGap = function (slot, i) {
    var gap = document.createElement("li");
    gap.className = "rank-gap";
    gap.dataset.gap = String(i);
    gap.setAttribute("aria-hidden", "true");  // keyboard users insert with number keys
    gap.innerHTML = '<span class="gap-label">insert here</span>';
    slot.parentNode.insertBefore(gap, slot);
    return gap;
  };

  RankingWidget.prototype.field = function (name) {
    return this.form.querySelector('[data-field="' + name + '"]');
  };

  /* ------------------------------------------------------------ draft in sessionStorage */

  RankingWidget.prototype.restore = function () {
    var store = storage();
    var draft = null;
    try { draft = store && JSON.parse(store.getItem(this.key) || "null"); } catch (e) { draft = null; }
    var known = this.ids;
    var fromServer = this.field("ranking").value;
    var tiers = draft ? draft.tiers : null;
    if (!tiers && fromServer) {
      try { tiers = JSON.parse(fromServer); } catch (e) { tiers = null; }
    }
    var seen = {};
    this.tiers = (Array.isArray(tiers) ? tiers : []).map(function (group) {
      return (Array.isArray(group) ? group : []).filter(function (id) {
        var ok = known.indexOf(id) >= 0 && !seen[id];
        seen[id] = true;
        return ok;
      });
    }).filter(function (group) { return group.length; });
    this.submissionId = (draft && draft.submissionId) || this.field("submission_id").value || uuid4();
    this.startedAt = (draft && draft.startedAt) || Date.now();
    if (draft) this.restoreInputs(draft);
  };

  RankingWidget.prototype.restoreInputs = function (draft) {
    var rationale = this.field("rationale");
    if (rationale && draft.rationale && !rationale.value) rationale.value = draft.rationale;
    var flags = draft.flags || [];
    this.form.querySelectorAll('input[name="flags"]').forEach(function (box) {
      if (flags.indexOf(box.value) >= 0) box.checked = true;
    });
  };

  RankingWidget.prototype.save = function () {
    var store = storage();
    if (!store) return;
    var rationale = this.field("rationale");
    var flags = Array.prototype.map.call(this.form.querySelectorAll('input[name="flags"]:checked'), function (b) { return b.value; });
    var draft = {
      project: this.project, tiers: this.tiers, rationale: rationale ? rationale.value : "",
      flags: flags, submissionId: this.submissionId, startedAt: this.startedAt,
    };
    try { store.setItem(this.key, JSON.stringify(draft)); } catch (e) { /* storage full: the page still works */ }
  };

  /* Drafts of other assignments of this project were submitted or skipped: the server moved on. */
  RankingWidget.prototype.dropStaleDrafts = function () {
    var store = storage();
    if (!store) return;
    for (var i = store.length - 1; i >= 0; i--) {
      var key = store.key(i);
      if (!key || key.indexOf(DRAFT_PREFIX) !== 0 || key === this.key) continue;
      try {
        if (JSON.parse(store.getItem(key)).project === this.project) store.removeItem(key);
      } catch (e) { store.removeItem(key); }
    }
  };

  /* ------------------------------------------------------------ state changes */

  RankingWidget.prototype.locate = function (id) {
    for (var i = 0; i < this.tiers.length; i++) {
      if (this.tiers[i].indexOf(id) >= 0) return i;
    }
    return -1;
  };

  RankingWidget.prototype.remove = function (id) {
    var i = this.locate(id);
    if (i < 0) return;
    this.tiers[i].splice(this.tiers[i].indexOf(id), 1);
    if (!this.tiers[i].length) this.tiers.splice(i, 1);
  };

  RankingWidget.prototype.placeAt = function (id, rank) {
    this.remove(id);
    var at = Math.min(rank, this.tiers.length);
    this.tiers.splice(at, 0, [id]);
    this.changed(id, "placed at rank " + (at + 1));
  };

  /* Into the gap before tiers[at] (as seen before the move): a rank of its own, the ranks below move down. */
  RankingWidget.prototype.insertBefore = function (id, at) {
    var i = this.locate(id);
    if (i >= 0 && i < at && this.tiers[i].length === 1) at -= 1;  // its own rank above closes up
    this.remove(id);
    at = Math.min(at, this.tiers.length);
    this.tiers.splice(at, 0, [id]);
    var below = at < this.tiers.length - 1 ? "; the ranks below moved down" : "";
    this.changed(id, "inserted at rank " + (at + 1) + below);
  };

  RankingWidget.prototype.join = function (id, group) {
    if (group.indexOf(id) >= 0) return;
    this.remove(id);
    group.push(id);
    var others = group.filter(function (x) { return x !== id; }).map(this.label, this).join(", ");
    this.changed(id, "tied with " + others + " at rank " + (this.tiers.indexOf(group) + 1));
  };

  RankingWidget.prototype.unrank = function (id) {
    if (this.locate(id) < 0) return this.say(this.label(id) + " is already unranked.");
    this.remove(id);
    this.changed(id, "unranked");
  };

  RankingWidget.prototype.tieUp = function (id) {
    if (!this.allowTies) return this.say("This project does not allow ties.");
    var i = this.locate(id);
    var above = i < 0 ? this.tiers.length - 1 : i - 1;
    if (above < 0) return this.say("Nothing above " + this.label(id) + " to tie with.");
    this.join(id, this.tiers[above]);
  };

  RankingWidget.prototype.moveUp = function (id) {
    var i = this.locate(id);
    if (i < 0) return this.placeAt(id, this.tiers.length);
    if (this.tiers[i].length > 1) {  // step out of the tie, just above its partners
      this.tiers[i].splice(this.tiers[i].indexOf(id), 1);
      this.tiers.splice(i, 0, [id]);
      return this.changed(id, "moved out of the tie to rank " + (i + 1));
    }
    if (i === 0) return this.say(this.label(id) + " is already at the top.");
    var group = this.tiers[i];
    this.tiers[i] = this.tiers[i - 1];
    this.tiers[i - 1] = group;
    this.changed(id, "moved up to rank " + i);
  };

  RankingWidget.prototype.moveDown = function (id) {
    var i = this.locate(id);
    if (i < 0) return this.say(this.label(id) + " is unranked; use a number key to rank it.");
    if (this.tiers[i].length > 1) {  // step out of the tie, just below its partners
      this.tiers[i].splice(this.tiers[i].indexOf(id), 1);
      this.tiers.splice(i + 1, 0, [id]);
      return this.changed(id, "moved out of the tie to rank " + (i + 2));
    }
    if (i === this.tiers.length - 1) return this.unrank(id);
    var group = this.tiers[i];
    this.tiers[i] = this.tiers[i + 1];
    this.tiers[i + 1] = group;
    this.changed(id, "moved down to rank " + (i + 2));
  };

  /* A drop on a filled rank ties (where allowed); on a gap between ranks it inserts; anywhere else
   * it takes that rank. `target` is a [data-slot] or [data-gap] element. */
  RankingWidget.prototype.drop = function (id, target) {
    if (target.dataset.gap !== undefined) return this.insertBefore(id, parseInt(target.dataset.gap, 10));
    var slot = target.dataset.slot;
    if (slot === "pool") return this.unrank(id);
    var rank = parseInt(slot, 10);
    var group = this.tiers[rank];
    if (group && this.allowTies && !(group.length === 1 && group[0] === id)) return this.join(id, group);
    this.placeAt(id, rank);
  };

  /* ------------------------------------------------------------ tap (or click) a response, then a place */

  RankingWidget.prototype.select = function (id) {
    if (this.selected) this.cards[this.selected].classList.remove("is-selected");
    this.selected = id;
    this.form.querySelector(".ranking-widget").classList.toggle("is-selecting", !!id);
    if (id) {
      this.cards[id].classList.add("is-selected");
      this.hint(this.label(id) + " selected: tap a rank to put it there" + (this.allowTies ? " (a filled rank: a tie)" : "") +
                ", “insert here” between ranks to insert it, or Unranked. Tap it again to cancel.");
    } else {
      this.hint("");
    }
  };

  RankingWidget.prototype.hint = function (text) {
    if (this.hintEl) this.hintEl.textContent = text;
    if (text) announce(text);
  };

  RankingWidget.prototype.onClick = function (event) {
    if (this.suppressClick) { this.suppressClick = false; return; }
    var target = event.target;
    if (target.closest("input, textarea, button, label, a, select")) return;
    var card = target.closest(".response-card");
    var inPool = card && this.poolEl.contains(card);
    if (card && (!this.selected || card.dataset.response === this.selected || inPool)) {
      // Nothing selected yet, the selected response again (cancel), or another unranked one (switch).
      return this.select(card.dataset.response === this.selected ? null : card.dataset.response);
    }
    var place = target.closest("[data-slot], [data-gap]");
    if (!this.selected || !place || !this.form.contains(place)) return;
    var id = this.selected;
    this.select(null);
    this.drop(id, place);  // a ranked response tapped while another is selected: its rank is the place
  };

  /* ------------------------------------------------------------ rendering */

  RankingWidget.prototype.label = function (id) {
    return "Response " + this.cards[id].dataset.label;
  };

  RankingWidget.prototype.say = function (text) { announce(text); };

  RankingWidget.prototype.changed = function (id, what) {
    this.render();
    this.clearError();
    this.cards[id].focus();
    announce(this.label(id) + " " + what + ".");
  };

  RankingWidget.prototype.render = function () {
    var self = this;
    this.slotEls.forEach(function (slot, i) {
      var box = slot.querySelector(".slot-cards");
      var group = self.tiers[i] || [];
      group.forEach(function (id) { box.appendChild(self.cards[id]); });
      slot.classList.toggle("is-filled", group.length > 0);
      slot.classList.toggle("is-tied", group.length > 1);
      // Gaps only between (and above) filled ranks: below the last one, the next empty rank is the place.
      self.gapEls[i].hidden = i >= self.tiers.length;
    });
    var ranked = {};
    this.tiers.forEach(function (group, i) {
      group.forEach(function (id) { ranked[id] = { rank: i + 1, tied: group.length > 1 }; });
    });
    this.ids.forEach(function (id) {
      if (!ranked[id]) self.poolEl.appendChild(self.cards[id]);
      self.describe(id, ranked[id]);
    });
    this.form.querySelector(".rank-pool").classList.toggle("is-empty", this.unranked().length === 0);
    this.field("ranking").value = this.tiers.length ? JSON.stringify(this.tiers) : "";
    this.field("submission_id").value = this.submissionId;
    this.save();
  };

  RankingWidget.prototype.describe = function (id, place) {
    var card = this.cards[id];
    var status = place ? "rank " + place.rank + (place.tied ? ", tied" : "") : "unranked";
    card.setAttribute("aria-label", this.label(id) + ", " + status + ": " + card.querySelector(".card-text").textContent);
    card.dataset.rank = place ? String(place.rank) : "";
  };

  RankingWidget.prototype.unranked = function () {
    var self = this;
    return this.ids.filter(function (id) { return self.locate(id) < 0; });
  };

  /* ------------------------------------------------------------ submit */

  RankingWidget.prototype.showError = function (text) {
    if (this.errorEl) this.errorEl.textContent = text;
    announce(text);
  };

  RankingWidget.prototype.clearError = function () {
    if (this.errorEl) this.errorEl.textContent = "";
  };

  /* Called before the form leaves; returns false (with a message) when it must not. */
  RankingWidget.prototype.beforeSubmit = function () {
    // Capped at the server's limit: a tab left open for days must not block the submit.
    this.field("seconds").value = Math.min((Date.now() - this.startedAt) / 1000, MAX_SECONDS).toFixed(1);
    this.save();
    var left = this.unranked();
    if (left.length && !this.allowPartial) {
      this.showError("Rank every response first: " + left.map(this.label, this).join(", ") + " still unranked.");
      return false;
    }
    if (this.ids.length - left.length < 2) {
      this.showError("Rank at least two responses first.");
      return false;
    }
    var rationale = this.field("rationale");
    if (this.rationaleRequired && rationale && !rationale.value.trim()) {
      this.showError("This project asks for a rationale: say why you chose this order.");
      rationale.focus();
      return false;
    }
    return true;
  };

  RankingWidget.prototype.submit = function () {
    var button = this.form.querySelector("[data-submit]");
    if (button.disabled) return;
    this.form.requestSubmit(button);
  };

  RankingWidget.prototype.skip = function () {
    var button = this.form.querySelector("[data-skip]");
    if (button && !button.disabled) button.click();  // a revision has no skip
  };

  /* ------------------------------------------------------------ keyboard */

  RankingWidget.prototype.focusSibling = function (card, step) {
    var all = Array.prototype.slice.call(this.form.querySelectorAll(".response-card"));
    var next = all[all.indexOf(card) + step];
    if (next) next.focus();
  };

  /* The rank a digit key asks for, or 0. With 10 or more responses, "1" places at rank 1 at once
   * and a second digit typed quickly after it (on the same response) makes it rank 10-16. */
  RankingWidget.prototype.typedRank = function (id, key) {
    var pending = this.pendingDigit;
    this.pendingDigit = null;
    if (!/^[0-9]$/.test(key)) return 0;
    var digit = parseInt(key, 10);
    if (pending && pending.id === id && Date.now() - pending.at <= SECOND_DIGIT_MS) {
      var two = pending.digit * 10 + digit;
      if (two <= this.ids.length) return two;
      this.say("There is no rank " + two + ": this item has " + this.ids.length + " responses.");
      return -1;  // handled: the response stays where "1" put it
    }
    if (digit === 0 || digit > this.ids.length) return 0;
    if (digit === 1 && this.ids.length >= 10) this.pendingDigit = { id: id, digit: 1, at: Date.now() };
    return digit;
  };

  RankingWidget.prototype.onKey = function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      return this.submit();
    }
    if (event.key === "Escape" && this.selected) return this.select(null);
    var card = event.target.closest && event.target.closest(".response-card");
    if (!card || event.ctrlKey || event.metaKey) return;
    var action = this.keyAction(event, card.dataset.response);
    if (action) {
      event.preventDefault();
      action.call(this, card);
    }
  };

  RankingWidget.prototype.keyAction = function (event, id) {
    var key = event.key;
    if (event.altKey) {
      if (key === "ArrowUp") return function () { this.moveUp(id); };
      if (key === "ArrowDown") return function () { this.moveDown(id); };
      return null;
    }
    var rank = this.typedRank(id, key);
    if (rank < 0) return function () {};
    if (rank) return function () { this.placeAt(id, rank - 1); };
    switch (key) {
      case "ArrowUp": case "ArrowLeft": return function (card) { this.focusSibling(card, -1); };
      case "ArrowDown": case "ArrowRight": return function (card) { this.focusSibling(card, 1); };
      case "0": case "Delete": case "Backspace": return function () { this.unrank(id); };
      case "t": case "T": case "=": return function () { this.tieUp(id); };
      case "Enter": return function () { this.submit(); };
      case "s": case "S": return function () { this.skip(); };
      default: return null;
    }
  };

  /* ------------------------------------------------------------ drag and drop (pointer events) */

  RankingWidget.prototype.onPointerDown = function (event) {
    var handle = event.target.closest(".drag-handle");
    if (!handle || event.button !== 0) return;
    event.preventDefault();
    var card = handle.closest(".response-card");
    card.focus();
    handle.setPointerCapture(event.pointerId);
    this.drag = { card: card, handle: handle, x: event.clientX, y: event.clientY, ghost: null, target: null };
  };

  RankingWidget.prototype.onPointerMove = function (event) {
    var drag = this.drag;
    if (!drag) return;
    if (!drag.ghost) {
      if (Math.abs(event.clientX - drag.x) + Math.abs(event.clientY - drag.y) < 5) return;
      drag.ghost = drag.card.cloneNode(true);
      drag.ghost.removeAttribute("tabindex");
      drag.ghost.removeAttribute("id");
      drag.ghost.setAttribute("aria-hidden", "true");
      drag.ghost.className = "response-card drag-ghost";
      drag.ghost.style.width = drag.card.offsetWidth + "px";
      document.body.appendChild(drag.ghost);
      drag.card.classList.add("is-dragging");
      this.form.querySelector(".ranking-widget").classList.add("is-dragging-card");
    }
    drag.ghost.style.transform = "translate(" + (event.clientX + 8) + "px," + (event.clientY + 8) + "px)";
    this.highlight(this.slotAt(event.clientX, event.clientY));
    if (event.clientY < 40) window.scrollBy(0, -12);
    else if (event.clientY > window.innerHeight - 40) window.scrollBy(0, 12);
  };

  RankingWidget.prototype.slotAt = function (x, y) {
    var el = document.elementFromPoint(x, y);
    var slot = el && el.closest("[data-slot], [data-gap]");
    return slot && this.form.contains(slot) ? slot : null;
  };

  RankingWidget.prototype.highlight = function (slot) {
    if (this.drag.target === slot) return;
    if (this.drag.target) this.drag.target.classList.remove("is-drop-target");
    if (slot) slot.classList.add("is-drop-target");
    this.drag.target = slot;
  };

  RankingWidget.prototype.onPointerUp = function (event, cancelled) {
    var drag = this.drag;
    if (!drag) return;
    this.drag = null;
    if (drag.ghost) drag.ghost.remove();
    drag.card.classList.remove("is-dragging");
    this.form.querySelector(".ranking-widget").classList.remove("is-dragging-card");
    if (drag.target) drag.target.classList.remove("is-drop-target");
    if (drag.handle.hasPointerCapture(event.pointerId)) drag.handle.releasePointerCapture(event.pointerId);
    if (drag.ghost) {
      // A click that ends a drag (fired right after pointerup, if at all) is not a tap.
      var self = this;
      this.suppressClick = true;
      window.setTimeout(function () { self.suppressClick = false; }, 0);
    }
    if (!cancelled && drag.ghost && drag.target) {
      this.select(null);
      this.drop(drag.card.dataset.response, drag.target);
    }
  };

  /* ------------------------------------------------------------ wiring */

  RankingWidget.prototype.bind = function () {
    var self = this;
    var form = this.form;
    form.addEventListener("keydown", function (e) { self.onKey(e); });
    form.addEventListener("click", function (e) { self.onClick(e); });
    form.addEventListener("pointerdown", function (e) { self.onPointerDown(e); });
    form.addEventListener("pointermove", function (e) { self.onPointerMove(e); });
    form.addEventListener("pointerup", function (e) { self.onPointerUp(e, false); });
    form.addEventListener("pointercancel", function (e) { self.onPointerUp(e, true); });
    form.addEventListener("input", function () { self.save(); });
    form.addEventListener("change", function () { self.save(); });
  };

  function initWithin(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var forms = scope.matches && scope.matches("[data-ranking-form]") ? [scope] : scope.querySelectorAll("[data-ranking-form]");
    Array.prototype.forEach.call(forms, function (form) {
      if (form.rankingWidget) return;
      form.rankingWidget = new RankingWidget(form);
    });
  }

  /* Capture phase: runs before htmx's own submit handler on the form, so a refused submit never leaves. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.rankingWidget) return;
    if (event.submitter && event.submitter.hasAttribute("data-skip")) return;
    if (!form.rankingWidget.beforeSubmit()) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  /* After a swap (not on htmx:load, which waits for the settle delay) so a restored draft is on
   * screen in the same frame as the new item. htmx has already put the focus back on an element
   * with the same id (the rationale box); otherwise the first response card gets it. */
  document.addEventListener("htmx:afterSwap", function () {
    initWithin(document);
    var item = document.getElementById("annotate-item");
    if (!item || item.dataset.swapSeen) return;
    item.dataset.swapSeen = "1";
    var error = item.querySelector("#ranking-error");
    var refused = error && error.textContent.trim();
    if (refused) announce(refused);
    else if (item.dataset.announce) announce(item.dataset.announce);
    var first = item.querySelector(".response-card, .all-done a, .notice a");
    if (first && !item.contains(document.activeElement)) first.focus({ preventScroll: true });
    // The next prompt (or the reason nothing was saved) at the top of the screen, not the old scroll position.
    (refused ? error : item).scrollIntoView({ block: "start" });
  });
  document.addEventListener("htmx:load", function (event) { initWithin(event.detail.elt); });

  function requestFailed(event, why) {
    var form = event.detail.elt.closest("[data-ranking-form]");
    if (form && form.rankingWidget) {
      form.rankingWidget.showError("Not saved: " + why + " Your ranking is kept on this page; try again.");
    }
  }

  document.addEventListener("htmx:responseError", function (event) {
    requestFailed(event, "the server answered " + event.detail.xhr.status + ".");
  });
  document.addEventListener("htmx:sendError", function (event) {
    requestFailed(event, "the server could not be reached.");
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { initWithin(document); });
  } else {
    initWithin(document);
  }
})();
