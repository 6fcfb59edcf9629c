// The side panel: settings form (persisted), request parameters with range checks, theme, and model info.
import { h } from './util.js';

// Number fields: blank means the server's default. `max` may be replaced by the context size.
const NUMBER_FIELDS = [
  { id: 'temperature', key: 'temperature', param: 'temperature', prop: 'temperature', min: 0, max: 2, integer: false, label: 'Temperature' },
  { id: 'top-p', key: 'topP', param: 'top_p', prop: 'top_p', min: 0, max: 1, integer: false, label: 'Top-p' },
  { id: 'top-k', key: 'topK', param: 'top_k', prop: 'top_k', min: 0, max: 2_147_483_647, integer: true, label: 'Top-k' },
  { id: 'min-p', key: 'minP', param: 'min_p', prop: 'min_p', min: 0, max: 1, integer: false, label: 'Min-p' },
  { id: 'max-tokens', key: 'maxTokens', param: 'max_tokens', prop: 'n_predict', min: 1, max: 2_147_483_647, integer: true, label: 'Max tokens' },
  { id: 'seed', key: 'seed', param: 'seed', prop: 'seed', min: -1, max: Number.MAX_SAFE_INTEGER, integer: true, label: 'Seed' },
];

const byId = (id) => document.getElementById(id);
let contextSize = 0;  // from /props, bounds max tokens

function hintText(field) {
  const max = field.id === 'max-tokens' && contextSize ? contextSize : field.max;
  if (field.id === 'seed') return 'A whole number; blank: a random seed per request.';
  if (field.integer) return `A whole number from ${field.min}${max < 1e9 ? ` to ${max}` : ''}; blank: server default.`;
  return `From ${field.min} to ${field.max}; blank: server default.`;
}

// The field's value as a number, null when blank, or an error message.
function checkField(field) {
  const input = byId(field.id);
  const raw = input.value.trim();
  if (input.validity.badInput) return { error: `${field.label} must be a number.` };
  if (raw === '') return { value: null };
  const value = Number(raw);
  const max = field.id === 'max-tokens' && contextSize ? contextSize : field.max;
  if (!Number.isFinite(value)) return { error: `${field.label} must be a number.` };
  if (field.integer && !Number.isInteger(value)) return { error: `${field.label} must be a whole number.` };
  if (value < field.min || value > max) return { error: `${field.label} must be from ${field.min} to ${max}.` };
  return { value };
}

function showFieldState(field, error) {
  const input = byId(field.id);
  const hint = byId(`${field.id}-hint`);
  input.setAttribute('aria-invalid', error ? 'true' : 'false');
  hint.textContent = error || hintText(field);
  hint.classList.toggle('invalid', Boolean(error));
}

// The sampling parameters for a request, or {errors: [{id, message}]}.
export function requestParams() {
  const params = {}, errors = [];
  for (const field of NUMBER_FIELDS) {
    const { value, error } = checkField(field);
    showFieldState(field, error);
    if (error) errors.push({ id: field.id, message: error });
    else if (value !== null) params[field.param] = value;
  }
  return errors.length ? { errors } : { params };
}

// Applies "auto" | "light" | "dark" as data-theme="light"|"dark" on <html>.
const darkQuery = window.matchMedia('(prefers-color-scheme: dark)');
let themeChoice = 'auto';
export function applyTheme(theme) {
  themeChoice = theme;
  const resolved = theme === 'auto' ? (darkQuery.matches ? 'dark' : 'light') : theme;
  document.documentElement.dataset.theme = resolved;
}
darkQuery.addEventListener('change', () => applyTheme(themeChoice));

// Binds the form to `settings`, calling save() after each change and onApiKey() when the key changes.
export function initSettings(settings, { save, onApiKey }) {
  byId('system-prompt').value = settings.systemPrompt;
  byId('show-logprobs').checked = settings.showLogprobs;
  byId('api-key').value = settings.apiKey;
  byId('theme').value = settings.theme;
  applyTheme(settings.theme);
  for (const field of NUMBER_FIELDS) {
    const input = byId(field.id);
    input.value = settings[field.key];
    showFieldState(field, '');
    input.addEventListener('input', () => {
      settings[field.key] = input.value.trim();
      showFieldState(field, checkField(field).error);
      save();
    });
  }
  byId('system-prompt').addEventListener('input', (e) => { settings.systemPrompt = e.target.value; save(); });
  byId('show-logprobs').addEventListener('change', (e) => { settings.showLogprobs = e.target.checked; save(); });
  byId('theme').addEventListener('change', (e) => { settings.theme = e.target.value; applyTheme(settings.theme); save(); });
  byId('api-key').addEventListener('input', (e) => {
    settings.apiKey = e.target.value.trim();
    byId('api-key').setAttribute('aria-invalid', 'false');
    byId('api-key-hint').classList.remove('invalid');
    byId('api-key-hint').textContent = 'Sent as "Authorization: Bearer"; kept in this browser.';
    save();
  });
  byId('api-key').addEventListener('change', () => onApiKey());
}

// Shows a message under the API key field (after a 401).
export function flagApiKey(message) {
  const hint = byId('api-key-hint');
  hint.textContent = message;
  hint.classList.add('invalid');
  byId('api-key').setAttribute('aria-invalid', 'true');
}

const round = (x) => (typeof x === 'number' && Number.isFinite(x) ? Number(x.toPrecision(6)) : null);

function formatCount(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

// Fills placeholders from /props' defaults and #model-info from /v1/models and /props.
// `models` / `props`: the parsed responses or null; `problem`: a message when they could not be read.
export function showServerInfo(models, props, problem) {
  const defaults = props?.default_generation_settings?.params ?? {};
  contextSize = Number.isInteger(props?.default_generation_settings?.n_ctx) ? props.default_generation_settings.n_ctx : 0;
  for (const field of NUMBER_FIELDS) {
    const value = round(defaults[field.prop]);
    let placeholder = value === null ? 'server default' : String(value);
    if (field.id === 'seed' && value === -1) placeholder = 'random';
    if (field.id === 'max-tokens' && (value === null || value < 0)) placeholder = contextSize ? `to the context end (${contextSize})` : 'to the context end';
    byId(field.id).placeholder = placeholder;
    if (field.id === 'max-tokens') {
      byId(field.id).max = String(contextSize || field.max);
      showFieldState(field, checkField(field).error);
    }
  }

  const model = models?.data?.[0];
  const rows = [];
  const row = (label, value) => {
    if (value !== undefined && value !== null && value !== '') rows.push(h('dt', {}, label), h('dd', {}, String(value)));
  };
  row('Model', model?.id);
  const meta = model?.meta;
  if (meta && typeof meta === 'object') {
    row('Architecture', meta.architecture);
    row('Type', meta.type);
    row('Parameters', formatCount(meta.parameters));
    row('Vocabulary', meta.n_vocab);
    row('Context (model)', meta.n_ctx);
    row('Context (trained)', meta.n_ctx_train);
  }
  row('Context per slot', props?.default_generation_settings?.n_ctx);
  row('Slots', props?.total_slots);
  row('Build', props?.build_info);
  const children = [h('h3', { id: 'model-heading' }, 'Model')];
  if (problem) children.push(h('p', { className: 'hint invalid' }, problem));
  if (rows.length) children.push(h('dl', {}, rows));
  if (typeof props?.chat_template === 'string' && props.chat_template) {
    children.push(h('details', {}, h('summary', {}, 'Chat template'), h('pre', { className: 'template' }, props.chat_template)));
  }
  byId('model-info').replaceChildren(...children);
  const name = byId('model-name');
  name.textContent = model?.id ?? '';
  name.title = model?.id ? `Model: ${model.id}` : '';
}
