// Passkeys in the review pages: registering one (the passkeys page), and
// confirming an approval with one (the review page of a request whose
// policy requires it). Served from the handler itself; the pages that
// load it allow scripts from 'self' and nothing else.
"use strict";
(() => {
  const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const post = async (url, body) => {
    const res = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
    });
    const out = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(out.detail || out.title || res.statusText);
    return out;
  };
  const show = (el, err) => {
    if (!el) return;
    el.textContent = err instanceof Error ? err.message : String(err);
    el.hidden = false;
  };

  const reg = document.getElementById("passkey-register");
  if (reg) {
    reg.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const error = document.getElementById("passkey-error");
      try {
        const begun = await post(reg.dataset.begin, { name: document.getElementById("passkey-name").value });
        const o = begun.options.publicKey;
        o.challenge = dec(o.challenge);
        o.user.id = dec(o.user.id);
        (o.excludeCredentials || []).forEach((c) => { c.id = dec(c.id); });
        const cred = await navigator.credentials.create({ publicKey: o });
        await post(reg.dataset.begin + "/" + encodeURIComponent(begun.ceremony), {
          id: cred.id, rawId: enc(cred.rawId), type: cred.type,
          response: {
            attestationObject: enc(cred.response.attestationObject),
            clientDataJSON: enc(cred.response.clientDataJSON),
            transports: cred.response.getTransports ? cred.response.getTransports() : [],
          },
        });
        window.location.assign(reg.dataset.done);
      } catch (err) {
        show(error, err);
      }
    });
  }

  const form = document.getElementById("decide-form");
  if (form && form.dataset.passkey) {
    form.addEventListener("submit", async (ev) => {
      if (!ev.submitter || ev.submitter.value !== "approve") return; // a denial needs none
      ev.preventDefault();
      const error = document.getElementById("passkey-error");
      try {
        const f = form.elements;
        const got = await post(form.dataset.passkey, { token: f.token.value, action_hash: f.action_hash.value });
        const cred = await navigator.credentials.get({
          publicKey: {
            challenge: dec(got.challenge), rpId: got.rp_id, timeout: got.timeout_ms,
            allowCredentials: got.allow.map((id) => ({ type: "public-key", id: dec(id) })),
            userVerification: "required",
          },
        });
        f.token.value = got.token;
        f.passkey_credential_id.value = cred.id;
        f.passkey_authenticator_data.value = enc(cred.response.authenticatorData);
        f.passkey_client_data_json.value = enc(cred.response.clientDataJSON);
        f.passkey_signature.value = enc(cred.response.signature);
        const verdict = document.createElement("input");
        verdict.type = "hidden"; verdict.name = "verdict"; verdict.value = "approve";
        form.appendChild(verdict);
        form.submit();
      } catch (err) {
        show(error, err);
      }
    });
  }
})();
