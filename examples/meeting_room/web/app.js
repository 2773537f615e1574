// The meeting-room page: follows the caller's MeetingSession view over Socket.IO
// and opens/closes the meeting over REST. No framework, no build step.
"use strict";

(() => {
  const NAMESPACE = "/meeting_sessions";
  const TOKEN_KEY = "boiler.meeting_room.token";
  const query = new URLSearchParams(window.location.search);
  const meetingId = query.get("meeting") || "meeting_1";
  const $ = (id) => document.getElementById(id);

  let token = null;
  let socket = null;
  let current = null; // the last rendered view data
  let saving = false;

  // -- status and errors ------------------------------------------------------------
  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  function clearError() {
    $("error").textContent = "";
    $("error").hidden = true;
  }

  function setConnection(state, text) {
    $("connection").dataset.state = state;
    $("connection").textContent = text;
  }

  // -- signing in and out -------------------------------------------------------------
  function signIn(newToken) {
    token = newToken;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("sign-in").hidden = true;
    $("session").hidden = false;
    connect();
  }

  function signOut() {
    if (socket) {
      socket.disconnect();
      socket = null;
    }
    token = null;
    current = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("session").hidden = true;
    $("sign-in").hidden = false;
    setConnection("idle", "Not connected");
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (value) {
      clearError();
      signIn(value);
    }
  });

  $("dev-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    try {
      const response = await fetch("/web/dev-sign-in", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ uid: $("uid-input").value.trim() }),
      });
      if (response.status === 404 || response.status === 405) {
        showError(
          "Development sign-in is disabled on this server (start it with " +
            "BOILER_WEB_DEV_SIGN_IN=1), or paste a token.",
        );
        return;
      }
      const body = await response.json();
      if (!response.ok) {
        showError(`Sign-in failed: ${errorText(body, response.status)}`);
        return;
      }
      signIn(body.token);
    } catch (err) {
      showError(`Sign-in failed: ${err.message}`);
    }
  });

  $("sign-out").addEventListener("click", () => {
    clearError();
    signOut();
  });

  // -- the live view --------------------------------------------------------------------
  function connect() {
    if (typeof io === "undefined") {
      showError(
        "The Socket.IO client did not load (/web/vendor/socket.io.min.js): " +
          "run `npm ci` in examples/meeting_room/web and restart the server.",
      );
      return;
    }
    setConnection("connecting", "Connecting…");
    socket = io(NAMESPACE, { auth: { token } });
    socket.on("connect", () => {
      setConnection("connected", "Live");
      // (Re)subscribing after every (re)connect resyncs: the server sends the current view.
      socket.emit("subscribe", { meeting_id: meetingId });
    });
    socket.on("view", (payload) => {
      clearError();
      render(payload);
    });
    socket.on("error", (body) => {
      showError(`Cannot follow meeting ${meetingId}: ${body.message} (${body.code})`);
      if (body.code === 401) {
        signOut(); // the token expired: the live view stopped; sign in again
      }
    });
    socket.on("connect_error", (err) => {
      if (socket && !socket.active) {
        // refused by the server (bad or expired token): no automatic retry
        showError(`Connection refused: ${err.message}`);
        signOut();
      } else {
        setConnection("reconnecting", "Reconnecting…");
      }
    });
    socket.on("disconnect", (reason) => {
      setConnection("disconnected", `Disconnected (${reason})`);
    });
  }

  function render(payload) {
    $("version").textContent = payload.version || "—";
    const uid = (payload.path || "").split("/")[1];
    if (uid) {
      $("uid").textContent = uid;
    }
    const data = payload.data;
    current = data;
    if (!data) {
      showError(`There is no view of meeting ${meetingId} for you (yet).`);
      $("in-session").disabled = true;
      return;
    }
    $("address").textContent = data.address || "—";
    $("coordinates").textContent = formatCoordinates(data.latitude, data.longitude);
    const status = $("status");
    status.dataset.inSession = String(Boolean(data.inSession));
    status.textContent = data.inSession ? "In session" : "Not in session";
    if (!saving) {
      $("in-session").checked = Boolean(data.inSession);
      $("in-session").disabled = false;
    }
    renderAttending(data.attending || []);
    $("attending-count").textContent = String((data.attending || []).length);
    $("hearing-aid-count").textContent = String(data.numHearingAidRequested || 0);
  }

  // Updates the list in place (keyed by name) so screen readers hear only the changes.
  function renderAttending(people) {
    const list = $("attending");
    const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
    people.forEach((person, index) => {
      const key = `${person.name}\u0000${person.organization}`;
      let li = existing.get(key);
      existing.delete(key);
      if (!li) {
        li = document.createElement("li");
        li.dataset.key = key;
      }
      fillPerson(li, person);
      if (list.children[index] !== li) {
        list.insertBefore(li, list.children[index] || null);
      }
    });
    existing.forEach((li) => li.remove());
    $("empty").hidden = people.length > 0;
  }

  function fillPerson(li, person) {
    const aid = Boolean(person.hearingAidRequested);
    if (li.dataset.name === person.name && li.dataset.hearingAid === String(aid)) {
      return;
    }
    li.dataset.name = person.name;
    li.dataset.hearingAid = String(aid);
    li.replaceChildren();
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = person.name;
    const org = document.createElement("span");
    org.className = "organization";
    org.textContent = person.organization || "";
    li.append(name, " ", org);
    if (aid) {
      const marker = document.createElement("span");
      marker.className = "hearing-aid";
      marker.textContent = "Hearing aid";
      marker.title = "Hearing aid requested";
      li.append(" ", marker);
    }
  }

  function formatCoordinates(lat, lon) {
    if (typeof lat !== "number" || typeof lon !== "number") {
      return "—";
    }
    const ns = lat >= 0 ? "N" : "S";
    const ew = lon >= 0 ? "E" : "W";
    return `${Math.abs(lat).toFixed(6)}° ${ns}, ${Math.abs(lon).toFixed(6)}° ${ew}`;
  }

  // -- the in-session toggle: PATCH /meeting_sessions/<id> ---------------------------------
  $("in-session").addEventListener("change", async (event) => {
    const box = event.target;
    const wanted = box.checked;
    saving = true;
    box.disabled = true;
    $("toggle-state").textContent = "Saving…";
    clearError();
    try {
      const response = await fetch(`/meeting_sessions/${encodeURIComponent(meetingId)}`, {
        method: "PATCH",
        headers: {
          Authorization: `Bearer ${token}`,
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ inSession: wanted }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        throw new Error(errorText(body, response.status));
      }
      $("toggle-state").textContent = "Saved";
    } catch (err) {
      showError(`Could not ${wanted ? "open" : "close"} the meeting: ${err.message}`);
      $("toggle-state").textContent = "";
      box.checked = Boolean(current && current.inSession);
    } finally {
      saving = false;
      box.disabled = !current;
    }
  });

  function errorText(body, status) {
    const error = body && body.error;
    return error ? `${error.message} (HTTP ${status}, ${error.code})` : `HTTP ${status}`;
  }

  // -- start ---------------------------------------------------------------------------------
  $("meeting-id").textContent = meetingId;
  const fromUrl = query.get("token");
  if (fromUrl) {
    // keep the token out of the address bar and history
    query.delete("token");
    const rest = query.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? `?${rest}` : ""));
  }
  const saved = fromUrl || sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    signIn(saved);
  } else {
    $("sign-in").hidden = false;
  }
})();
