// Safe Markdown: parse(text) gives a plain-object AST (no DOM, linear time); render() builds DOM from it with createElement/textContent only.
import { safeUrl, matchCodeSpans, parseInlines } from './markdown-inline.js';

export { safeUrl };

const MAX_QUOTE_DEPTH = 8;      // deeper '>' lines stay text (bounds the work per line)
const MAX_LIST_DEPTH = 4;       // deeper list markers stay text
const MAX_TABLE_COLUMNS = 64;

// ---------------------------------------------------------------- blocks

const isSpace = (c) => c === ' ' || c === '\t';
const isBlank = (line) => { for (const c of line) if (!isSpace(c)) return false; return true; };
const leadingSpaces = (line) => { let i = 0; while (line[i] === ' ') i++; return i; };

// Columns of leading whitespace (a tab advances to the next multiple of 4).
function indentColumns(line) {
  let col = 0;
  for (const c of line) {
    if (c === ' ') col++;
    else if (c === '\t') col += 4 - (col % 4);
    else break;
  }
  return col;
}

// The line without its first n columns of leading whitespace.
function stripColumns(line, n) {
  let col = 0, i = 0;
  while (i < line.length && col < n && isSpace(line[i])) {
    const width = line[i] === '\t' ? 4 - (col % 4) : 1;
    if (col + width > n) return ' '.repeat(col + width - n) + line.slice(i + 1);
    col += width;
    i++;
  }
  return line.slice(i);
}

function fenceOpen(line) {
  const indent = leadingSpaces(line);
  const ch = line[indent];
  if (indent > 3 || (ch !== '`' && ch !== '~')) return null;
  let end = indent;
  while (line[end] === ch) end++;
  if (end - indent < 3) return null;
  const info = line.slice(end).trim();
  if (ch === '`' && info.includes('`')) return null;
  const word = info.split(/[ \t]/, 1)[0].toLowerCase();
  return { ch, length: end - indent, indent, lang: /^[a-z0-9+#-]{1,20}$/.test(word) ? word : '' };
}

function isFenceClose(line, fence) {
  const indent = leadingSpaces(line);
  if (indent > 3) return false;
  let end = indent;
  while (line[end] === fence.ch) end++;
  return end - indent >= fence.length && isBlank(line.slice(end));
}

function atxHeading(line) {
  const indent = leadingSpaces(line);
  if (indent > 3) return null;
  let end = indent;
  while (line[end] === '#') end++;
  const level = end - indent;
  if (level < 1 || level > 6 || (end < line.length && !isSpace(line[end]))) return null;
  let text = line.slice(end).trimEnd();
  let close = text.length;
  while (close > 0 && text[close - 1] === '#') close--;
  if (close < text.length && (close === 0 || isSpace(text[close - 1]))) text = text.slice(0, close);
  return { level, text: text.trim() };
}

function isRule(line) {
  const indent = leadingSpaces(line);
  const ch = line[indent];
  if (indent > 3 || (ch !== '-' && ch !== '*' && ch !== '_')) return false;
  let count = 0;
  for (let i = indent; i < line.length; i++) {
    if (line[i] === ch) count++;
    else if (!isSpace(line[i])) return false;
  }
  return count >= 3;
}

const isQuote = (line) => leadingSpaces(line) <= 3 && line[leadingSpaces(line)] === '>';

function stripQuote(line) {
  let i = leadingSpaces(line) + 1;  // past '>'
  if (isSpace(line[i])) i++;
  return line.slice(i);
}

// A list item's marker: {ordered, ch, start, contentIndent, content} or null.
function listMarker(line) {
  const indent = leadingSpaces(line);
  if (indent > 3) return null;
  let end = indent, ordered = false, start = 1;
  const c = line[end];
  if (c === '-' || c === '*' || c === '+') end++;
  else {
    while (end - indent < 9 && line[end] >= '0' && line[end] <= '9') end++;
    if (end === indent || (line[end] !== '.' && line[end] !== ')')) return null;
    ordered = true;
    start = parseInt(line.slice(indent, end), 10);
    end++;
  }
  if (end < line.length && !isSpace(line[end])) return null;
  const ch = line[end - 1];
  let text = end;
  while (isSpace(line[text])) text++;
  const empty = text >= line.length;
  const contentIndent = empty || text - end > 4 ? end + 1 : text;
  return { ordered, ch, start, empty, contentIndent, content: empty ? '' : line.slice(Math.min(contentIndent, text)) };
}

// Splits a table row into raw cell texts: '\|' is a literal pipe, and pipes inside code spans do not split.
function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  const spans = matchCodeSpans(s);
  const cells = [];
  let cell = '', endsWithPipe = false;
  for (let i = 0; i < s.length;) {
    const span = spans.get(i);
    if (span) {
      cell += s.slice(i, span.end).replaceAll('\\|', '|');
      i = span.end;
    } else if (s[i] === '\\' && s[i + 1] === '|') {
      cell += '|';
      i += 2;
    } else if (s[i] === '\\') {
      cell += s.slice(i, i + 2);
      i += 2;
    } else if (s[i] === '|') {
      cells.push(cell);
      cell = '';
      i++;
      endsWithPipe = true;
      continue;
    } else {
      cell += s[i];
      i++;
    }
    endsWithPipe = false;
  }
  if (!endsWithPipe || cell.trim() !== '') cells.push(cell);
  return cells.map((c) => c.trim());
}

// The column alignments of a delimiter row such as "|:--|--:|", or null.
function delimiterRow(line) {
  if (!line.includes('|') && !line.includes('-')) return null;
  const cells = splitRow(line);
  const align = [];
  for (const cell of cells) {
    if (!/^:?-+:?$/.test(cell)) return null;
    const left = cell.startsWith(':'), right = cell.endsWith(':');
    align.push(left && right ? 'center' : right ? 'right' : left ? 'left' : null);
  }
  return align;
}

// A table starts at lines[i] when it holds a pipe and the next line is a delimiter row as wide.
function tableStart(lines, i) {
  if (!lines[i].includes('|') || i + 1 >= lines.length || !lines[i + 1].includes('|')) return null;
  const align = delimiterRow(lines[i + 1]);
  if (!align) return null;
  const header = splitRow(lines[i]);
  return header.length === align.length ? { header, align } : null;
}

function startsBlock(lines, i, depth, inParagraph) {
  const line = lines[i];
  if (fenceOpen(line) || atxHeading(line) || isRule(line)) return true;
  if (depth.quote < MAX_QUOTE_DEPTH && isQuote(line)) return true;
  if (depth.list < MAX_LIST_DEPTH) {
    const m = listMarker(line);
    // As in CommonMark, only a non-empty item, and an ordered one only from 1, interrupts a paragraph.
    if (m && (!inParagraph || (!m.empty && (!m.ordered || m.start === 1)))) return true;
  }
  return tableStart(lines, i) !== null;
}

function parseBlocks(lines, depth) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) { i++; continue; }

    const fence = fenceOpen(line);
    if (fence) {
      const body = [];
      let closed = false;
      for (i++; i < lines.length; i++) {
        if (isFenceClose(lines[i], fence)) { closed = true; i++; break; }
        body.push(stripColumns(lines[i], fence.indent));
      }
      blocks.push({ type: 'code_block', lang: fence.lang, text: body.join('\n'), closed });
      continue;
    }

    const heading = atxHeading(line);
    if (heading) {
      blocks.push({ type: 'heading', level: heading.level, children: parseInlines(heading.text) });
      i++;
      continue;
    }

    if (isRule(line)) { blocks.push({ type: 'hr' }); i++; continue; }

    if (depth.quote < MAX_QUOTE_DEPTH && isQuote(line)) {
      const inner = [];
      while (i < lines.length && isQuote(lines[i])) inner.push(stripQuote(lines[i++]));
      blocks.push({ type: 'blockquote', children: parseBlocks(inner, { ...depth, quote: depth.quote + 1 }) });
      continue;
    }

    if (depth.list < MAX_LIST_DEPTH && listMarker(line)) {
      i = parseList(lines, i, depth, blocks);
      continue;
    }

    const table = tableStart(lines, i);
    if (table) {
      i = parseTable(lines, i, table, depth, blocks);
      continue;
    }

    const para = [line.trimStart()];
    for (i++; i < lines.length && !isBlank(lines[i]) && !startsBlock(lines, i, depth, true); i++) {
      para.push(lines[i].trimStart());
    }
    para[para.length - 1] = para[para.length - 1].trimEnd();
    blocks.push({ type: 'paragraph', children: parseInlines(para.join('\n')) });
  }
  return blocks;
}

function parseList(lines, i, depth, blocks) {
  const first = listMarker(lines[i]);
  const list = { type: 'list', ordered: first.ordered, start: first.start, tight: true, items: [] };
  const items = [];
  let current = null, blankBefore = false;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      if (current) current.lines.push('');
      blankBefore = true;
      i++;
      continue;
    }
    if (current && indentColumns(line) >= current.contentIndent) {
      current.lines.push(stripColumns(line, current.contentIndent));
    } else {
      const m = listMarker(line);
      if (m && m.ordered === first.ordered && m.ch === first.ch) {
        if (blankBefore && current) list.tight = false;
        current = { lines: [m.content], contentIndent: m.contentIndent };
        items.push(current);
      } else if (current && !blankBefore && !startsBlock(lines, i, depth, true)) {
        current.lines.push(line.trimStart());  // a lazy paragraph continuation
      } else {
        break;
      }
    }
    blankBefore = false;
    i++;
  }
  const inner = { ...depth, list: depth.list + 1 };
  for (const item of items) {
    while (item.lines.length && isBlank(item.lines[item.lines.length - 1])) item.lines.pop();
    const children = parseBlocks(item.lines, inner);
    if (children.length > 1 && item.lines.some(isBlank) && children.some((b) => b.type === 'paragraph')) {
      list.tight = false;
    }
    list.items.push({ type: 'list_item', children });
  }
  blocks.push(list);
  return i;
}

function parseTable(lines, i, table, depth, blocks) {
  const width = Math.min(table.header.length, MAX_TABLE_COLUMNS);
  const cellsOf = (raw) => {
    const cells = raw.slice(0, width).map(parseInlines);
    while (cells.length < width) cells.push([]);
    return cells;
  };
  const node = { type: 'table', align: table.align.slice(0, width), header: cellsOf(table.header), rows: [] };
  for (i += 2; i < lines.length; i++) {
    const line = lines[i];
    if (isBlank(line) || !line.includes('|') || fenceOpen(line) || atxHeading(line) || isQuote(line)) break;
    node.rows.push(cellsOf(splitRow(line)));
  }
  blocks.push(node);
  return i;
}

// ---------------------------------------------------------------- API

export function parse(text) {
  const src = String(text ?? '').replace(/\r\n?/g, '\n').replaceAll('\0', '\uFFFD');
  return { type: 'doc', children: parseBlocks(src.split('\n'), { quote: 0, list: 0 }) };
}

// Builds DOM for an AST (or Markdown text) in `doc`; returns a DocumentFragment.
export function render(input, doc) {
  const ast = typeof input === 'string' ? parse(input) : input;
  const fragment = doc.createDocumentFragment();
  renderBlocks(ast.children ?? [], fragment, doc, false);
  return fragment;
}

function el(doc, tag, className) {
  const e = doc.createElement(tag);
  if (className) e.className = className;
  return e;
}

function renderBlocks(blocks, parent, doc, tight) {
  for (const block of blocks) {
    switch (block.type) {
      case 'paragraph':
        if (tight) renderInlines(block.children, parent, doc);
        else renderInlines(block.children, parent.appendChild(el(doc, 'p')), doc);
        break;
      case 'heading':
        renderInlines(block.children, parent.appendChild(el(doc, 'h' + Math.min(6, Math.max(1, block.level | 0)))), doc);
        break;
      case 'hr':
        parent.appendChild(el(doc, 'hr'));
        break;
      case 'blockquote':
        renderBlocks(block.children, parent.appendChild(el(doc, 'blockquote')), doc, false);
        break;
      case 'list': {
        const list = parent.appendChild(el(doc, block.ordered ? 'ol' : 'ul'));
        if (block.ordered && block.start !== 1) list.start = block.start;
        for (const item of block.items) renderBlocks(item.children, list.appendChild(el(doc, 'li')), doc, block.tight);
        break;
      }
      case 'code_block':
        parent.appendChild(renderCodeBlock(block, doc));
        break;
      case 'table':
        parent.appendChild(renderTable(block, doc));
        break;
    }
  }
}

function renderCodeBlock(block, doc) {
  const wrap = el(doc, 'div', 'code-block');
  const bar = wrap.appendChild(el(doc, 'div', 'code-bar'));
  bar.appendChild(el(doc, 'span', 'code-lang')).textContent = block.lang || 'text';
  const copy = bar.appendChild(el(doc, 'button', 'code-copy'));
  copy.type = 'button';
  copy.dataset.action = 'copy-code';
  copy.setAttribute('aria-label', 'Copy code');
  copy.textContent = 'Copy';
  const code = wrap.appendChild(el(doc, 'pre')).appendChild(el(doc, 'code'));
  if (/^[a-z0-9+#-]{1,20}$/.test(block.lang ?? '')) code.className = 'lang-' + block.lang;
  code.textContent = block.text;
  return wrap;
}

function renderTable(block, doc) {
  const wrap = el(doc, 'div', 'table-wrap');
  const table = wrap.appendChild(el(doc, 'table'));
  const row = (cells, tag, parent) => {
    const tr = parent.appendChild(el(doc, 'tr'));
    cells.forEach((cell, k) => {
      const align = block.align[k];
      renderInlines(cell, tr.appendChild(el(doc, tag, align ? 'align-' + align : '')), doc);
    });
  };
  row(block.header, 'th', table.appendChild(el(doc, 'thead')));
  const body = table.appendChild(el(doc, 'tbody'));
  for (const cells of block.rows) row(cells, 'td', body);
  return wrap;
}

function renderInlines(nodes, parent, doc) {
  for (const node of nodes) {
    switch (node.type) {
      case 'text':
        parent.appendChild(doc.createTextNode(node.value));
        break;
      case 'br':
      case 'softbreak':  // chat text means its line breaks
        parent.appendChild(el(doc, 'br'));
        break;
      case 'code':
        parent.appendChild(el(doc, 'code')).textContent = node.value;
        break;
      case 'em':
      case 'strong':
        renderInlines(node.children, parent.appendChild(el(doc, node.type)), doc);
        break;
      case 'link': {
        const href = safeUrl(node.href);  // checked again: an AST may come from elsewhere
        if (!href) { renderInlines(node.children, parent, doc); break; }
        const a = parent.appendChild(el(doc, 'a', node.image ? 'image-link' : ''));
        a.href = href;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        if (node.image) a.title = 'Image: ' + href;
        renderInlines(node.children, a, doc);
        break;
      }
    }
  }
}
