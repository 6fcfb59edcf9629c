// Markdown inlines for markdown.js: code spans, emphasis, links, autolinks, breaks; linear time, no DOM.

const LINK_LOOKAHEAD = 512;     // the most characters a "(destination "title")" or "<autolink>" may span
const MAX_URL = 2048;
const ALLOWED_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

// The normalised URL when its scheme is allowed (absolute http, https or mailto), else null.
export function safeUrl(raw) {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_URL) return null;
  let url;
  try { url = new URL(raw); } catch { return null; }
  return ALLOWED_PROTOCOLS.has(url.protocol) ? url.href : null;
}

const isSpace = (c) => c === ' ' || c === '\t';
const ASCII_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
const UNICODE_PUNCTUATION = /[\p{P}\p{S}]/u;
const isPunctuation = (c) => (c < '\x80' ? ASCII_PUNCTUATION.includes(c) : UNICODE_PUNCTUATION.test(c));
const isWhitespace = (c) => (c < '\x80' ? c <= ' ' : /\s/.test(c));

// Code spans: a run of N backticks closes only at the next run of exactly N. Returns a Map from the
// opening run's index to {end, content}. Linear: per run length, a pointer only moves forward.
export function matchCodeSpans(s) {
  const runs = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '`') continue;
    let end = i;
    while (s[end] === '`') end++;
    let backslashes = 0;
    for (let k = i - 1; k >= 0 && s[k] === '\\'; k--) backslashes++;
    runs.push({ start: i, length: end - i, escaped: backslashes % 2 === 1 });
    i = end - 1;
  }
  const byLength = new Map(), pointer = new Map(), spans = new Map();
  runs.forEach((run, index) => {
    if (!byLength.has(run.length)) byLength.set(run.length, []);
    byLength.get(run.length).push(index);
  });
  for (let index = 0; index < runs.length; index++) {
    const run = runs[index];
    // An escaped first backtick is literal: the rest of the run may still open a span.
    const start = run.escaped ? run.start + 1 : run.start;
    const length = run.escaped ? run.length - 1 : run.length;
    const candidates = byLength.get(length);
    if (length === 0 || !candidates) continue;
    let p = pointer.get(length) ?? 0;
    while (p < candidates.length && candidates[p] <= index) p++;
    pointer.set(length, p);
    if (p === candidates.length) continue;
    const closer = runs[candidates[p]];
    let content = s.slice(start + length, closer.start).replaceAll('\n', ' ');
    if (content.length >= 2 && content[0] === ' ' && content[content.length - 1] === ' ' && content.trim() !== '') {
      content = content.slice(1, -1);
    }
    spans.set(start, { end: closer.start + closer.length, content });
    index = candidates[p];
  }
  return spans;
}

// "(destination "title")" at s[i]: {url, end} or null; bounded by LINK_LOOKAHEAD.
function linkDestination(s, i) {
  if (s[i] !== '(') return null;
  const limit = Math.min(s.length, i + LINK_LOOKAHEAD);
  let j = i + 1;
  const skipSpace = () => { while (j < limit && (isSpace(s[j]) || s[j] === '\n')) j++; };
  skipSpace();
  let url = '';
  if (s[j] === '<') {
    for (j++; j < limit && s[j] !== '>'; j++) {
      if (s[j] === '\n' || s[j] === '<') return null;
      if (s[j] === '\\' && ASCII_PUNCTUATION.includes(s[j + 1] ?? '')) j++;
      url += s[j];
    }
    if (s[j] !== '>') return null;
    j++;
  } else {
    let parens = 0;
    for (; j < limit; j++) {
      const c = s[j];
      if (c === '\\' && ASCII_PUNCTUATION.includes(s[j + 1] ?? '')) { url += s[++j]; continue; }
      if (c <= ' ' || c === '\x7f') break;
      if (c === '(') { if (++parens > 32) return null; } else if (c === ')') { if (parens-- === 0) break; }
      url += c;
    }
  }
  const beforeTitle = j;
  skipSpace();
  const open = s[j];
  if (j > beforeTitle && (open === '"' || open === "'" || open === '(')) {
    const close = open === '(' ? ')' : open;
    for (j++; j < limit && s[j] !== close; j++) {
      if (s[j] === '\\') j++;
      else if (open === '(' && s[j] === '(') return null;
    }
    if (s[j] !== close) return null;
    j++;
    skipSpace();
  }
  return s[j] === ')' ? { url, end: j + 1 } : null;
}

// "<scheme:...>" or "<user@host>" at s[i]: {href, text, end} or null.
function autolink(s, i) {
  const limit = Math.min(s.length, i + LINK_LOOKAHEAD);
  let j = i + 1;
  while (j < limit && s[j] !== '>') {
    if (s[j] === '<' || s[j] <= ' ') return null;
    j++;
  }
  if (s[j] !== '>') return null;
  const text = s.slice(i + 1, j);
  let href = null;
  if (/^[A-Za-z][A-Za-z0-9+.-]{1,31}:/.test(text)) href = safeUrl(text);
  else if (/^[^@]+@[^@]+$/.test(text)) href = safeUrl('mailto:' + text);
  return href ? { href, text, end: j + 1 } : null;
}

// Inside a link, an image (or an autolink) becomes its text: no <a> inside <a>.
function unlink(node) {
  if (node.type === 'link') return { type: 'text', value: textOf(node.children) };
  return node.children ? { ...node, children: mergeText(node.children.map(unlink)) } : node;
}

function textOf(nodes) {
  return nodes.map((n) => (n.type === 'text' || n.type === 'code' ? n.value : n.children ? textOf(n.children) : ' ')).join('');
}

// The inline parser keeps its nodes in a doubly linked list of items and its emphasis delimiters in
// another (CommonMark's delimiter-stack algorithm, with its "openers bottom" bound: linear time).
export function parseInlines(src) {
  const codeSpans = matchCodeSpans(src);
  const head = { node: null, prev: null, next: null };
  const state = { tail: head, top: null };  // top: the last delimiter
  const brackets = [];
  let text = '';
  const append = (node) => {
    const item = { node, prev: state.tail, next: null };
    state.tail.next = item;
    state.tail = item;
    return item;
  };
  const flush = () => { if (text) { append({ type: 'text', value: text }); text = ''; } };

  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') {
      const d = src[i + 1];
      if (d === '\n') {
        flush();
        append({ type: 'br' });
        i += 2;
        while (isSpace(src[i])) i++;
      } else if (d !== undefined && ASCII_PUNCTUATION.includes(d)) {
        text += d;
        i += 2;
      } else {
        text += c;
        i++;
      }
    } else if (c === '`') {
      const span = codeSpans.get(i);
      if (span) {
        flush();
        append({ type: 'code', value: span.content });
        i = span.end;
      } else {
        while (src[i] === '`') text += src[i++];
      }
    } else if (c === '\n') {
      let keep = text.length;
      while (keep > 0 && text[keep - 1] === ' ') keep--;
      const hard = text.length - keep >= 2;
      text = text.slice(0, keep);
      flush();
      append({ type: hard ? 'br' : 'softbreak' });
      for (i++; isSpace(src[i]); i++);
    } else if (c === '*' || c === '_') {
      let end = i;
      while (src[end] === c) end++;
      const before = i > 0 ? src[i - 1] : '\n', after = end < src.length ? src[end] : '\n';
      const left = !isWhitespace(after) && (!isPunctuation(after) || isWhitespace(before) || isPunctuation(before));
      const right = !isWhitespace(before) && (!isPunctuation(before) || isWhitespace(after) || isPunctuation(after));
      const canOpen = c === '*' ? left : left && (!right || isPunctuation(before));
      const canClose = c === '*' ? right : right && (!left || isPunctuation(after));
      flush();
      const item = append({ type: 'text', value: '' });
      const delim = { item, ch: c, count: end - i, length: end - i, canOpen, canClose, prev: state.top, next: null };
      item.delim = delim;
      if (state.top) state.top.next = delim;
      state.top = delim;
      i = end;
    } else if (c === '[' || (c === '!' && src[i + 1] === '[')) {
      flush();
      const image = c === '!';
      brackets.push({ item: append({ type: 'text', value: image ? '![' : '[' }), image, bottom: state.top, active: true });
      i += image ? 2 : 1;
    } else if (c === ']') {
      const opener = brackets.pop();
      const dest = opener && opener.active ? linkDestination(src, i + 1) : null;
      if (!dest) {
        text += ']';
        i++;
        continue;
      }
      flush();
      const href = safeUrl(dest.url);
      if (href === null) {  // a disallowed scheme: the whole link stays text
        text += src.slice(i, dest.end);
        i = dest.end;
        continue;
      }
      processEmphasis(state, opener.bottom);
      const children = [];
      for (let it = opener.item.next; it; it = it.next) children.push(finish(it));
      opener.item.next = null;
      state.tail = opener.item;
      opener.item.node = opener.image
        ? { type: 'link', href, image: true, children: [{ type: 'text', value: textOf(children) || href }] }
        : { type: 'link', href, children: mergeText(children.map(unlink)) };
      if (!opener.image) {  // links do not nest: earlier '[' openers can no longer make links
        for (let k = brackets.length - 1; k >= 0 && brackets[k].active; k--) if (!brackets[k].image) brackets[k].active = false;
      }
      i = dest.end;
    } else if (c === '<') {
      const link = autolink(src, i);
      if (link) {
        flush();
        append({ type: 'link', href: link.href, children: [{ type: 'text', value: link.text }] });
        i = link.end;
      } else {
        text += c;
        i++;
      }
    } else {
      let end = i + 1;
      while (end < src.length && !'\\`\n*_[!]<'.includes(src[end])) end++;
      text += src.slice(i, end);
      i = end;
    }
  }
  flush();
  processEmphasis(state, null);
  const nodes = [];
  for (let it = head.next; it; it = it.next) nodes.push(finish(it));
  return mergeText(nodes);
}

// An item's node, with a delimiter's leftover characters as its text.
function finish(item) {
  if (item.delim) item.node.value = item.delim.ch.repeat(item.delim.count);
  return item.node;
}

function mergeText(nodes) {
  const out = [];
  for (const node of nodes) {
    const last = out[out.length - 1];
    if (node.type === 'text' && node.value === '') continue;
    if (node.type === 'text' && last && last.type === 'text') last.value += node.value;
    else out.push(node);
  }
  return out;
}

function removeDelimiter(state, d) {
  if (d.prev) d.prev.next = d.next;
  if (d.next) d.next.prev = d.prev;
  else state.top = d.prev;
  d.prev = d.next = null;
}

function removeItem(state, item) {
  item.prev.next = item.next;
  if (item.next) item.next.prev = item.prev;
  else state.tail = item.prev;
}

// CommonMark's "process emphasis" for the delimiters above `bottom`, which it then removes.
function processEmphasis(state, bottom) {
  const openersBottom = new Map();
  let closer = state.top;
  while (closer && closer.prev !== bottom) closer = closer.prev;
  while (closer) {
    if (!closer.canClose) { closer = closer.next; continue; }
    const key = closer.ch + (closer.canOpen ? '1' : '0') + (closer.length % 3);
    const floor = openersBottom.has(key) ? openersBottom.get(key) : bottom;
    let opener = closer.prev;
    while (opener && opener !== bottom && opener !== floor) {
      if (opener.ch === closer.ch && opener.canOpen) {
        const oddMatch = (opener.canClose || closer.canOpen) && (opener.length + closer.length) % 3 === 0 &&
          !(opener.length % 3 === 0 && closer.length % 3 === 0);
        if (!oddMatch) break;
      }
      opener = opener.prev;
    }
    if (!opener || opener === bottom || opener === floor) {
      openersBottom.set(key, closer.prev);
      const next = closer.next;
      if (!closer.canOpen) removeDelimiter(state, closer);
      closer = next;
      continue;
    }
    const use = opener.count >= 2 && closer.count >= 2 ? 2 : 1;
    opener.count -= use;
    closer.count -= use;
    const wrapper = { type: use === 2 ? 'strong' : 'em', children: [] };
    for (let it = opener.item.next; it !== closer.item; it = it.next) wrapper.children.push(finish(it));
    wrapper.children = mergeText(wrapper.children);
    const item = { node: wrapper, prev: opener.item, next: closer.item };
    opener.item.next = item;
    closer.item.prev = item;
    opener.next = closer;  // the delimiters in between are done
    closer.prev = opener;
    if (opener.count === 0) { removeItem(state, opener.item); removeDelimiter(state, opener); }
    if (closer.count === 0) {
      const next = closer.next;
      removeItem(state, closer.item);
      removeDelimiter(state, closer);
      closer = next;
    }
  }
  while (state.top && state.top !== bottom) removeDelimiter(state, state.top);
}
