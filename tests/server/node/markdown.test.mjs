// Unit tests of the web UI's Markdown parser (src/server/ui/markdown.js): the AST it builds, its URL allow-list, and linear time; and the token-bytes decoding of logprobs.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, safeUrl } from '../../../src/server/ui/markdown.js';
import { tokenDecoder, compactToken, decodeAlone } from '../../../src/server/ui/logprobs.js';

const blocks = (text) => parse(text).children;
const inlines = (text) => {
  const b = blocks(text);
  assert.equal(b.length, 1, `one block expected for ${JSON.stringify(text)}`);
  return b[0].children;
};
const text = (value) => ({ type: 'text', value });

// Every node of a tree, depth first.
function* walk(node) {
  yield node;
  for (const child of node.children ?? []) yield* walk(child);
  for (const item of node.items ?? []) yield* walk(item);
  for (const cell of node.header ?? []) for (const n of cell) yield* walk(n);
  for (const row of node.rows ?? []) for (const cell of row) for (const n of cell) yield* walk(n);
}
const nodesOf = (text, type) => [...walk(parse(text))].filter((n) => n.type === type);
const plain = (nodes) => nodes.map((n) => (n.type === 'text' || n.type === 'code' ? n.value : plain(n.children ?? []))).join('');

test('empty and blank input', () => {
  assert.deepEqual(parse(''), { type: 'doc', children: [] });
  assert.deepEqual(parse('  \n\n\t\n'), { type: 'doc', children: [] });
  assert.deepEqual(parse(undefined), { type: 'doc', children: [] });
});

test('paragraphs, soft and hard line breaks', () => {
  assert.deepEqual(blocks('one\ntwo\n\nthree'), [
    { type: 'paragraph', children: [text('one'), { type: 'softbreak' }, text('two')] },
    { type: 'paragraph', children: [text('three')] },
  ]);
  assert.deepEqual(inlines('a  \nb\\\nc'), [text('a'), { type: 'br' }, text('b'), { type: 'br' }, text('c')]);
  assert.deepEqual(inlines('a\r\nb'), [text('a'), { type: 'softbreak' }, text('b')]);
  assert.deepEqual(inlines('trailing   '), [text('trailing')]);
});

test('ATX headings', () => {
  assert.deepEqual(blocks('# One\n###### Six ###\n####### seven\n#nospace'), [
    { type: 'heading', level: 1, children: [text('One')] },
    { type: 'heading', level: 6, children: [text('Six')] },
    { type: 'paragraph', children: [text('####### seven'), { type: 'softbreak' }, text('#nospace')] },
  ]);
  assert.deepEqual(blocks('## a *b*')[0].children, [text('a '), { type: 'em', children: [text('b')] }]);
  assert.equal(blocks('#')[0].type, 'heading');
});

test('emphasis and strong', () => {
  assert.deepEqual(inlines('*a* _b_ **c** __d__'), [
    { type: 'em', children: [text('a')] }, text(' '), { type: 'em', children: [text('b')] }, text(' '),
    { type: 'strong', children: [text('c')] }, text(' '), { type: 'strong', children: [text('d')] },
  ]);
  assert.deepEqual(inlines('***x***'), [{ type: 'em', children: [{ type: 'strong', children: [text('x')] }] }]);
  assert.deepEqual(inlines('*a **b** c*'), [{ type: 'em', children: [text('a '), { type: 'strong', children: [text('b')] }, text(' c')] }]);
});

test('emphasis edge cases', () => {
  assert.deepEqual(inlines('snake_case_name'), [text('snake_case_name')]);   // '_' does not open inside words
  assert.deepEqual(inlines('a * b * c'), [text('a * b * c')]);               // spaced stars are literal
  assert.deepEqual(inlines('2*3*4'), [text('2'), { type: 'em', children: [text('3')] }, text('4')]);
  assert.deepEqual(inlines('*unclosed'), [text('*unclosed')]);
  assert.deepEqual(inlines('**bold*'), [text('*'), { type: 'em', children: [text('bold')] }]);
  assert.deepEqual(inlines('*a_'), [text('*a_')]);                           // different characters never pair
  assert.deepEqual(inlines('\\*not\\*'), [text('*not*')]);
  assert.deepEqual(inlines('*a `*` b*'), [{ type: 'em', children: [text('a '), { type: 'code', value: '*' }, text(' b')] }]);
  assert.deepEqual(inlines('*foo**bar**baz*'), [{ type: 'em', children: [text('foo'), { type: 'strong', children: [text('bar')] }, text('baz')] }]);
  assert.deepEqual(inlines('a **** b'), [text('a **** b')]);
});

test('code spans with N backticks', () => {
  assert.deepEqual(inlines('`a`'), [{ type: 'code', value: 'a' }]);
  assert.deepEqual(inlines('``a`b``'), [{ type: 'code', value: 'a`b' }]);
  assert.deepEqual(inlines('` `` `'), [{ type: 'code', value: '``' }]);          // one space stripped each side
  assert.deepEqual(inlines('```a``b```'), [{ type: 'code', value: 'a``b' }]);
  assert.deepEqual(inlines('``a`'), [text('``a`')]);                              // no run of exactly 2: literal
  assert.deepEqual(inlines('`*no* [md](http://x)`'), [{ type: 'code', value: '*no* [md](http://x)' }]);
  assert.deepEqual(inlines('`a\nb`'), [{ type: 'code', value: 'a b' }]);
  assert.deepEqual(inlines('\\`a`'), [text('`a`')]);                              // an escaped opener
  assert.deepEqual(inlines('`a\\`b'), [{ type: 'code', value: 'a\\' }, text('b')]);  // no escapes inside
  assert.deepEqual(inlines('`<script>`'), [{ type: 'code', value: '<script>' }]);
});

test('fenced code blocks', () => {
  assert.deepEqual(blocks('```js\nlet a = 1;\n```'), [{ type: 'code_block', lang: 'js', text: 'let a = 1;', closed: true }]);
  assert.deepEqual(blocks('~~~ Python extra words\nx\n~~~'), [{ type: 'code_block', lang: 'python', text: 'x', closed: true }]);
  // A longer fence holds a shorter one; the closer is the same character, at least as long.
  assert.deepEqual(blocks('````md\n```\ninner\n```\n`````\nafter'), [
    { type: 'code_block', lang: 'md', text: '```\ninner\n```', closed: true },
    { type: 'paragraph', children: [text('after')] },
  ]);
  assert.deepEqual(blocks('~~~\n```\n~~~')[0].text, '```');
  // Unclosed (a reply still streaming): runs to the end, never back to prose.
  assert.deepEqual(blocks('text\n```py\nprint(1)\n# not a heading'), [
    { type: 'paragraph', children: [text('text')] },
    { type: 'code_block', lang: 'py', text: 'print(1)\n# not a heading', closed: false },
  ]);
  assert.deepEqual(blocks('```\n'), [{ type: 'code_block', lang: '', text: '', closed: false }]);
  // The info string is sanitised: only [a-z0-9+#-]{1,20} becomes the language.
  assert.equal(blocks('```c++\n```')[0].lang, 'c++');
  assert.equal(blocks('```"><img src=x>\n```')[0].lang, '');
  assert.equal(blocks('```js{.x onclick=y}\n```')[0].lang, '');
  assert.equal(blocks('```' + 'a'.repeat(21) + '\n```')[0].lang, '');
  assert.equal(blocks('``` a`b\n```')[0].type, 'paragraph');   // a backtick info string is not a fence
  assert.deepEqual(blocks('  ```\n  a\n    b\n  ```')[0].text, 'a\n  b');
});

test('lists, one nesting level, tight and loose', () => {
  const list = blocks('- a\n- b\n  - c\n  - d\n- e')[0];
  assert.equal(list.type, 'list');
  assert.equal(list.ordered, false);
  assert.equal(list.tight, true);
  assert.equal(list.items.length, 3);
  assert.deepEqual(list.items[1].children[1], {
    type: 'list', ordered: false, start: 1, tight: true,
    items: [{ type: 'list_item', children: [{ type: 'paragraph', children: [text('c')] }] },
            { type: 'list_item', children: [{ type: 'paragraph', children: [text('d')] }] }],
  });
  const ordered = blocks('3. x\n4. y')[0];
  assert.equal(ordered.ordered, true);
  assert.equal(ordered.start, 3);
  assert.equal(blocks('* a\n\n* b')[0].tight, false);
  assert.equal(blocks('- a\n* b').length, 2);                   // another bullet starts another list
  assert.deepEqual(blocks('- a\nlazy')[0].items[0].children[0].children, [text('a'), { type: 'softbreak' }, text('lazy')]);
  assert.deepEqual(blocks('Para\n- item').map((b) => b.type), ['paragraph', 'list']);
  assert.deepEqual(blocks('The year\n1990. was').map((b) => b.type), ['paragraph']);  // only "1." interrupts
  assert.deepEqual(blocks('-notalist')[0].type, 'paragraph');
});

test('blockquotes and rules', () => {
  assert.deepEqual(blocks('> a\n> b\n>\n> > c'), [{ type: 'blockquote', children: [
    { type: 'paragraph', children: [text('a'), { type: 'softbreak' }, text('b')] },
    { type: 'blockquote', children: [{ type: 'paragraph', children: [text('c')] }] },
  ] }]);
  assert.deepEqual(blocks('---\n***\n_ _ _\n--'), [{ type: 'hr' }, { type: 'hr' }, { type: 'hr' }, { type: 'paragraph', children: [text('--')] }]);
  assert.deepEqual(blocks('text\n---').map((b) => b.type), ['paragraph', 'hr']);
  assert.deepEqual(blocks('> ```\n> code')[0].children[0], { type: 'code_block', lang: '', text: 'code', closed: false });
});

test('GFM pipe tables', () => {
  const [table] = blocks('| a | b | c |\n|:--|:-:|--:|\n| 1 | *2* | 3 |');
  assert.equal(table.type, 'table');
  assert.deepEqual(table.align, ['left', 'center', 'right']);
  assert.deepEqual(table.header, [[text('a')], [text('b')], [text('c')]]);
  assert.deepEqual(table.rows, [[[text('1')], [{ type: 'em', children: [text('2')] }], [text('3')]]]);
  // No outer pipes, escaped pipes, pipes inside code spans.
  const [t2] = blocks('x | y\n--- | ---\na \\| b | `c|d`\n`e\\|f` | g');
  assert.deepEqual(t2.align, [null, null]);
  assert.deepEqual(t2.rows, [[[text('a | b')], [{ type: 'code', value: 'c|d' }]], [[{ type: 'code', value: 'e|f' }], [text('g')]]]);
  // Ragged rows: padded or cut to the header's width.
  const [t3] = blocks('|a|b|\n|-|-|\n|1|\n|1|2|3|');
  assert.deepEqual(t3.rows, [[[text('1')], []], [[text('1')], [text('2')]]]);
  // The delimiter row must be as wide as the header; without one there is no table.
  assert.equal(blocks('|a|b|\n|-|\n|1|2|')[0].type, 'paragraph');
  assert.equal(blocks('|a|b|\n|1|2|')[0].type, 'paragraph');
  // A table ends at a blank line or a line without a pipe, and interrupts a paragraph.
  assert.deepEqual(blocks('intro\n|a|\n|-|\n|1|\nafter').map((b) => b.type), ['paragraph', 'table', 'paragraph']);
  // At most 64 columns.
  const wide = '|' + 'h|'.repeat(100) + '\n|' + '-|'.repeat(100);
  assert.equal(blocks(wide)[0].header.length, 64);
});

test('links and autolinks', () => {
  assert.deepEqual(inlines('[ember](https://example.com/a?b=1#c)'),
    [{ type: 'link', href: 'https://example.com/a?b=1#c', children: [text('ember')] }]);
  assert.deepEqual(inlines('[**b**](http://x.org "title")'),
    [{ type: 'link', href: 'http://x.org/', children: [{ type: 'strong', children: [text('b')] }] }]);
  assert.deepEqual(inlines('[w](https://en.wikipedia.org/wiki/C_(language))')[0].href, 'https://en.wikipedia.org/wiki/C_(language)');
  assert.deepEqual(inlines('[a](<https://x.org/a b>)')[0].href, 'https://x.org/a%20b');
  assert.deepEqual(inlines('<https://example.com/x>'), [{ type: 'link', href: 'https://example.com/x', children: [text('https://example.com/x')] }]);
  assert.deepEqual(inlines('<me@example.com>'), [{ type: 'link', href: 'mailto:me@example.com', children: [text('me@example.com')] }]);
  assert.deepEqual(inlines('[mail](mailto:a@b.c)')[0].href, 'mailto:a@b.c');
  assert.deepEqual(inlines('HTTPS scheme: [x](HTTPS://EXAMPLE.com)')[1].href, 'https://example.com/');  // normalised
  // Not links: relative, missing destination, a space before '('.
  for (const s of ['[a](/relative)', '[a](page.html)', '[a]', '[a] (http://x)', '[a]()', '[a](//evil.com)']) {
    assert.equal(nodesOf(s, 'link').length, 0, s);
    assert.equal(plain(inlines(s)), s, s);
  }
  // Links do not nest.
  const nested = inlines('[a [b](http://b) c](http://a)');
  assert.equal(nodesOf('[a [b](http://b) c](http://a)', 'link').length, 1);
  assert.equal(nested.find((n) => n.type === 'link').href, 'http://b/');
  // Images become links with their alt text (or the URL).
  assert.deepEqual(inlines('![a cat](https://x.org/c.png)'), [{ type: 'link', href: 'https://x.org/c.png', image: true, children: [text('a cat')] }]);
  assert.deepEqual(inlines('![](https://x.org/c.png)')[0].children, [text('https://x.org/c.png')]);
});

test('an image inside a link shows as its alt text (no link inside a link)', () => {
  assert.deepEqual(inlines('[![a cat](https://x.org/c.png)](https://x.org/)'),
    [{ type: 'link', href: 'https://x.org/', children: [text('a cat')] }]);
  assert.deepEqual(inlines('[see ![](https://x.org/c.png) *here*](https://x.org/)'),
    [{ type: 'link', href: 'https://x.org/', children: [text('see https://x.org/c.png '), { type: 'em', children: [text('here')] }] }]);
  assert.deepEqual(inlines('[**![b](https://x.org/b.png)**](https://x.org/)')[0].children,
    [{ type: 'strong', children: [text('b')] }]);
  assert.deepEqual(inlines('[a <https://y.org> b](https://x.org/)'),
    [{ type: 'link', href: 'https://x.org/', children: [text('a https://y.org b')] }]);
  for (const src of ['[![i](https://x.org/i.png)](https://x.org/)', '[x ![i](https://x.org/i.png) [y](https://y.org/)](https://x.org/)']) {
    for (const link of nodesOf(src, 'link')) assert.equal([...walk(link)].filter((n) => n.type === 'link').length, 1, src);
  }
  // The destination lookahead is 512 characters.
  assert.equal(nodesOf(`[a](https://x.org/${'b'.repeat(480)})`, 'link').length, 1);
  assert.equal(nodesOf(`[a](https://x.org/${'b'.repeat(520)})`, 'link').length, 0);
});

test('token bytes: a character split across tokens goes to the token that completes it', () => {
  const decode = tokenDecoder();
  const dash = [decode({ token: '\ufffd', logprob: -0.1, bytes: [226] }), decode({ token: '\ufffd', logprob: -0.2, bytes: [128, 148] })];
  assert.deepEqual(dash.map((t) => t[0]), ['‹E2›', '—']);
  assert.equal(dash[0][1], Number(Math.exp(-0.1).toPrecision(3)));
  // A token ending in the first bytes of a character keeps its whole characters; the rest moves on.
  const next = tokenDecoder();
  assert.deepEqual([next({ token: 'a\ufffd', bytes: [97, 0xf0, 0x9f] }), next({ token: '\ufffd', bytes: [0x99] }),
                    next({ token: '\ufffd!', bytes: [0x82, 33] })].map((t) => t[0]), ['a', '‹99›', '🙂!']);
  // Without bytes (an older server, or stored data) the token's text is used.
  assert.equal(tokenDecoder()({ token: 'plain', logprob: 0 })[0], 'plain');
  assert.deepEqual(compactToken({ token: 'x', logprob: 0, top_logprobs: [{ token: 'x', logprob: 0 }, { token: 'y', logprob: -1 }] }),
    ['x', 1, [['y', 0.368]]]);
});

test('token bytes: alternatives decode alone, incomplete sequences as hex', () => {
  assert.equal(decodeAlone([226]), '‹E2›');
  assert.equal(decodeAlone([226, 128]), '‹E2 80›');
  assert.equal(decodeAlone([226, 128, 148]), '—');
  assert.equal(decodeAlone([128, 148, 65]), '‹80 94›A');
  assert.equal(decodeAlone([104, 105, 0xf0, 0x9f, 0x99, 0x82, 0xc3]), 'hi🙂‹C3›');
  assert.equal(decodeAlone([0xc0, 0xaf]), '‹C0 AF›');  // overlong: invalid
  assert.equal(decodeAlone([0xed, 0xa0, 0x80]), '‹ED A0 80›');  // a surrogate: invalid
  const entry = {
    token: '\ufffd', logprob: -0.5, bytes: [226],
    top_logprobs: [{ token: '\ufffd', logprob: -0.5, bytes: [226] }, { token: '\ufffd', logprob: -1.5, bytes: [240, 159] }, { token: ' é', logprob: -2, bytes: [32, 195, 169] }],
  };
  const [token, , alternatives] = tokenDecoder()(entry);
  assert.equal(token, '‹E2›');
  assert.deepEqual(alternatives.map((a) => a[0]), ['‹F0 9F›', ' é']);  // the chosen token is stored once
});

test('link scheme allow-list', () => {
  const rejected = [
    'javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'java\tscript:alert(1)', 'java\nscript:alert(1)',
    ' javascript:alert(1)', '\x01javascript:alert(1)', 'javascript&colon;alert(1)', 'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox(1)', 'file:///etc/passwd', 'ftp://x.org/', 'blob:https://x.org/1', '/relative', '', 'http://',
  ];
  for (const url of rejected) assert.equal(safeUrl(url), null, JSON.stringify(url));
  assert.equal(safeUrl('https://x.org'), 'https://x.org/');
  assert.equal(safeUrl(' HTTP://X.ORG/a b '), 'http://x.org/a%20b');
  assert.equal(safeUrl('mailto:someone@example.com'), 'mailto:someone@example.com');

  // In Markdown, a disallowed link stays text, all of it.
  for (const dest of ['javascript:alert(1)', 'JAVASCRIPT:alert(1)', 'java&#09;script:alert(1)', 'data:text/html;base64,PHNjcmlwdD4=',
    'vbscript:x', '\x01javascript:alert(1)']) {
    const src = `[click](${dest})`;
    assert.equal(nodesOf(src, 'link').length, 0, src);
    assert.equal(plain(parse(src).children), src, src);
  }
  // A tab or newline inside the scheme splits the destination: no link either.
  for (const src of ['[x](java\tscript:alert(1))', '[x](java\nscript:alert(1))', '[x]( javascript:alert(1))',
    '<javascript:alert(1)>', '<JavaScript:alert(1)>', '<data:text/html,x>', '![i](javascript:alert(1))']) {
    assert.equal(nodesOf(src, 'link').length, 0, JSON.stringify(src));
  }
  // Every href the parser emits passes the allow-list.
  for (const link of nodesOf('[a](http://a) <https://b> <c@d.e> [f](mailto:g@h)', 'link')) {
    assert.match(link.href, /^(https?|mailto):/);
  }
});

test('raw HTML stays text', () => {
  const payloads = ['<img src=x onerror=alert(1)>', '<script>alert(1)</script>', '<a href="javascript:alert(1)">x</a>',
    '<iframe src="https://x"></iframe>', '&lt;b&gt; &amp;', '<svg onload=alert(1)>'];
  for (const p of payloads) {
    const ast = parse(p);
    assert.deepEqual(ast.children, [{ type: 'paragraph', children: [text(p)] }], p);
  }
  // A tag split over stream deltas comes out the same once whole.
  assert.deepEqual(inlines('Hi <im' + 'g src=x onerror=alert(1)>'), [text('Hi <img src=x onerror=alert(1)>')]);
  // Inside blocks too.
  assert.deepEqual(nodesOf('# <script>x</script>\n> <img src=x>\n- <b>', 'text').map((n) => n.value),
    ['<script>x</script>', '<img src=x>', '<b>']);
  assert.equal(blocks('```html\n<script>alert(1)</script>\n```')[0].text, '<script>alert(1)</script>');
});

test('backslash escapes', () => {
  assert.deepEqual(inlines('\\# \\[a\\](b) \\\\ \\q'), [text('# [a](b) \\ \\q')]);
  assert.equal(blocks('\\# not a heading')[0].type, 'paragraph');
});

test('linear time on hostile input', () => {
  const time = (s) => { const t = performance.now(); parse(s); return performance.now() - t; };
  // The bound: generous, a check for linear time rather than a benchmark.
  assert.ok(time('*'.repeat(100_000)) < 200, '100 000 *');
  assert.ok(time('_'.repeat(100_000)) < 200, '100 000 _');
  // Adversarial mixes (quadratic would take minutes at this size; linear takes well under a second).
  const hostile = {
    alternating: '*_'.repeat(50_000), opening: '*a'.repeat(50_000), closing: 'a*'.repeat(50_000),
    brackets: '['.repeat(100_000), links: '[a]('.repeat(25_000), titles: '[](a "'.repeat(20_000),
    nestedLinks: '[a '.repeat(30_000) + '](http://x)'.repeat(30_000),
    backticks: Array.from({ length: 5000 }, (_, i) => '`'.repeat((i % 60) + 1) + 'a').join(''),
    angles: '<a'.repeat(50_000), quotes: '>'.repeat(100_000), pipes: '|'.repeat(50_000) + '\n' + '|-'.repeat(25_000),
    spaces: '# a' + ' '.repeat(100_000) + 'b #', lines: 'a\n'.repeat(50_000),
    lists: Array.from({ length: 10_000 }, (_, i) => ' '.repeat(i % 8) + '- a').join('\n'),
    rules: '*a **b '.repeat(15_000),
  };
  for (const [name, s] of Object.entries(hostile)) assert.ok(time(s) < 3000, name);
});

test('render builds DOM through the document given, not at import', async () => {
  // A minimal fake document: render must only use createElement/createTextNode/createDocumentFragment.
  const calls = [];
  const node = (tag) => ({
    tag, children: [], attrs: {}, dataset: {}, style: {},
    appendChild(c) { this.children.push(c); return c; },
    setAttribute(k, v) { this.attrs[k] = v; },
    set textContent(v) { this.children = [{ tag: '#text', text: String(v) }]; },
  });
  const doc = {
    createElement: (t) => { calls.push(t); return node(t); },
    createTextNode: (t) => ({ tag: '#text', text: t }),
    createDocumentFragment: () => node('#fragment'),
  };
  const { render } = await import('../../../src/server/ui/markdown.js');
  const frag = render('# T\n[x](javascript:alert(1)) <img src=x>\n\n```js\na\n```\n\n[ok](https://ok.org)', doc);
  const all = [];
  const visit = (n) => { all.push(n); (n.children ?? []).forEach(visit); };
  visit(frag);
  assert.ok(!all.some((n) => n.tag === 'img' || n.tag === 'script'));
  const links = all.filter((n) => n.tag === 'a');
  assert.equal(links.length, 1);
  assert.equal(links[0].href, 'https://ok.org/');
  assert.equal(links[0].rel, 'noopener noreferrer');
  assert.equal(links[0].target, '_blank');
  assert.equal(all.find((n) => n.tag === 'code').className, 'lang-js');
  assert.ok(all.some((n) => n.tag === 'button' && n.dataset.action === 'copy-code'));
  assert.ok(calls.includes('h1'));
});

// A cheap guard beside the CSP: no HTML-string sink, no code from strings, no inline handlers or
// styles anywhere in the UI's sources (the page builds every element with createElement).
test('the UI sources use no HTML-string sinks', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const dir = new URL('../../../src/server/ui/', import.meta.url);
  const banned = /innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment|\beval\(|new Function|setAttribute\(\s*['"]on|\bon[a-z]+\s*=\s*["']|style\s*=\s*["']/;
  const files = readdirSync(dir).filter((f) => /\.(js|html)$/.test(f));
  assert.ok(files.length >= 3, `UI files: ${files}`);
  for (const f of files) {
    const lines = readFileSync(new URL(f, dir), 'utf8').split('\n');
    lines.forEach((line, i) => assert.doesNotMatch(line, banned, `${f}:${i + 1}: ${line.trim()}`));
  }
});
