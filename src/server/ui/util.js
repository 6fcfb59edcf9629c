// Small DOM and browser helpers shared by the chat UI's modules (no HTML strings anywhere).

// Builds an element: h('button', {className: 'x', type: 'button', 'aria-label': 'Copy', dataset: {action: 'copy'}}, 'text', child).
// Keys with a dash (aria-*, role-like) become attributes; others are properties. Children: strings or nodes.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.includes('-') || key === 'role' || key === 'for') el.setAttribute(key, value === true ? '' : String(value));
    else el[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

// A random id from crypto.getRandomValues (crypto.randomUUID is missing in insecure contexts).
export function newId(prefix = '') {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// Copies text: navigator.clipboard when available (secure contexts), else a hidden textarea + execCommand.
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through: permissions or focus can refuse it
    }
  }
  const area = h('textarea', { readOnly: true, className: 'offscreen', 'aria-hidden': 'true', tabIndex: -1 });
  area.value = text;
  document.body.append(area);
  const active = document.activeElement;
  area.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  area.remove();
  if (active instanceof HTMLElement) active.focus();
  return ok;
}

// Offers `data` as a JSON file download.
export function downloadJson(data, filename) {
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, className: 'offscreen' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// A filesystem-friendly local timestamp: 20261130-1142.
export function stamp(date = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}`;
}

// Shows a transient message in #status (role=status); errors stay until the next message.
let statusTimer = 0;
export function setStatus(message, kind = 'info') {
  const status = document.getElementById('status');
  clearTimeout(statusTimer);
  status.textContent = message;
  status.dataset.kind = kind;
  if (message && kind === 'info') statusTimer = setTimeout(() => { status.textContent = ''; }, 6000);
}
