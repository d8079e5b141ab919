// The reference for hotmesh's function catalog: the original's wrappers, run by Node.
//
// Each group below re-states what the original's handler class does (HotMesh TS, the
// services/pipe/functions/*.ts of the newest version read: default arguments, `?.`, `||`
// and `??` guards, what each returns), and every case is called the way the original's
// pipe calls a function: detached from its handler (`fn(...row)`, so `this` is undefined)
// with exactly the values of the row before. Node runs every case and writes table.json,
// which tests/functions.rs replays against hotmesh. Regenerate with:
//   TZ=UTC node manifest/tests/functions/oracle.js > manifest/tests/functions/table.json
// in the default locale (en-US, whose collation is ICU's root collation: array.sort
// compares strings with localeCompare). cron.nextDelay needs cron-parser 4 (the
// original's dependency): `npm install --prefix /tmp/cp cron-parser@4` and
// NODE_PATH=/tmp/cp/node_modules.
'use strict';

// ---- the handlers

class ArrayFns {
  // a missing, null or other falsy index reads element 0; no list reads undefined
  get(list, index) { return list?.[index || 0]; }
  length(list) { return list?.length; }
  concat(a, b) { return a.concat(b); }
  indexOf(list, item, from) { return list.indexOf(item, from); }
  join(list, sep) { return list.join(sep); }
  lastIndexOf(list, item, from) { return list.lastIndexOf(item, from); }
  pop(list) { return list.pop(); }
  // returns the list, not the new length
  push(list, ...items) { list.push(...items); return list; }
  reverse(list) { return list.reverse(); }
  shift(list) { return list.shift(); }
  slice(list, start, end) { return list.slice(start, end); }
  // only the exact string 'ASCENDING' (or no order) sorts up; nulls go first going up
  // and last going down; two strings compare with localeCompare
  sort(list, order = 'ASCENDING') {
    const up = order === 'ASCENDING';
    return list.sort((a, b) => {
      if (a === b) return 0;
      if (a === null || a === undefined) return up ? -1 : 1;
      if (b === null || b === undefined) return up ? 1 : -1;
      if (typeof a === 'string' && typeof b === 'string') return up ? a.localeCompare(b) : b.localeCompare(a);
      if (up) return a < b ? -1 : 1;
      return a > b ? -1 : 1;
    });
  }
  splice(list, start, count, ...items) { return list.splice(start, count, ...items); }
  unshift(list, ...items) { return list.unshift(...items); }
}

class BitwiseFns {
  and(a, b) { return a & b; }
  or(a, b) { return a | b; }
  xor(a, b) { return a ^ b; }
  leftShift(a, b) { return a << b; }
  rightShift(a, b) { return a >> b; }
  unsignedRightShift(a, b) { return a >>> b; }
}

class ConditionalFns {
  ternary(c, yes, no) { return c ? yes : no; }
  equality(a, b) { return a == b; }
  strict_equality(a, b) { return a === b; }
  inequality(a, b) { return a != b; }
  strict_inequality(a, b) { return a !== b; }
  greater_than(a, b) { return a > b; }
  less_than(a, b) { return a < b; }
  greater_than_or_equal(a, b) { return a >= b; }
  less_than_or_equal(a, b) { return a <= b; }
  nullish(a, b) { return a ?? b; }
}

// the original's isValidCron: five plain fields, nothing else
const CRON_SHAPE = /^(\*|([0-5]?\d)) (\*|([01]?\d|2[0-3])) (\*|([12]?\d|3[01])) (\*|([1-9]|1[0-2])) (\*|([0-6](?:-[0-6])?(?:,[0-6])?))$/;
class CronFns {
  nextDelay(expr) {
    if (expr == null || typeof expr !== 'string') return -1;
    if (!CRON_SHAPE.test(expr)) throw new Error(`Invalid cron expression: ${expr}`);
    require('cron-parser').parseExpression(expr, { utc: true }).next(); // throws as the original's does
    return 'checked in Rust'; // the delay depends on the clock: tests/functions.rs and cron.rs check it
  }
}

// the original's getDateInstance
function dateOf(input) {
  if (typeof input === 'string') {
    if (/^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z)?$/.test(input)) return new Date(input);
    const ms = parseInt(input, 10);
    if (!isNaN(ms)) return new Date(ms);
  } else if (input instanceof Date) {
    return input;
  } else if (typeof input === 'number') {
    return new Date(input);
  }
  throw new Error('Invalid date format');
}
class DateFns {
  fromISOString(s) { return new Date(s); }
  now() { return Date.now(); }
  // takes no argument: always today (UTC)
  yyyymmdd() { return new Date().toISOString().slice(0, 10); }
  parse(s) { return Date.parse(s); }
  // a falsy date means now
  toISOXString(d) { return (d ? dateOf(d) : new Date()).toISOString().replace(/[:TZ-]/g, ''); }
  toLocaleDateString(d, l, o) { return dateOf(d).toLocaleDateString(l, o); }
  toLocaleString(d, l, o) { return dateOf(d).toLocaleString(l, o); }
  toLocaleTimeString(d, l, o) { return dateOf(d).toLocaleTimeString(l, o); }
  // every optional argument is passed on, so a missing one is an explicit undefined (NaN)
  UTC(y, m, d, h, mi, s, ms) { return Date.UTC(y, m, d, h, mi, s, ms); }
  setMinutes(d, m, s, ms) { return dateOf(d).setMinutes(m, s, ms); }
  setMonth(d, m, day) { return dateOf(d).setMonth(m, day); }
  setSeconds(d, s, ms) { return dateOf(d).setSeconds(s, ms); }
  setFullYear(d, y, m, day) { return dateOf(d).setFullYear(y, m, day); }
  setHours(d, h, m, s, ms) { return dateOf(d).setHours(h, m, s, ms); }
  setUTCFullYear(d, y, m, day) { return dateOf(d).setUTCFullYear(y, m, day); }
  setUTCHours(d, h, m, s, ms) { return dateOf(d).setUTCHours(h, m, s, ms); }
  setUTCMinutes(d, m, s, ms) { return dateOf(d).setUTCMinutes(m, s, ms); }
  setUTCMonth(d, m, day) { return dateOf(d).setUTCMonth(m, day); }
  setUTCSeconds(d, s, ms) { return dateOf(d).setUTCSeconds(s, ms); }
}
for (const k of ['getDate', 'getDay', 'getFullYear', 'getHours', 'getMilliseconds', 'getMinutes', 'getMonth', 'getSeconds',
  'getTime', 'getTimezoneOffset', 'getUTCDate', 'getUTCDay', 'getUTCFullYear', 'getUTCHours', 'getUTCMilliseconds',
  'getUTCMinutes', 'getUTCMonth', 'getUTCSeconds', 'toDateString', 'toISOString', 'toJSON', 'toString', 'valueOf']) {
  DateFns.prototype[k] = function (d) { return dateOf(d)[k](); };
}
for (const k of ['setMilliseconds', 'setTime', 'setDate', 'setUTCDate', 'setUTCMilliseconds']) {
  DateFns.prototype[k] = function (d, x) { return dateOf(d)[k](x); };
}

class JsonFns {
  stringify(v, replacer, space) { return JSON.stringify(v, replacer, space); }
  parse(text, reviver) { return JSON.parse(text, reviver); }
}

class LogicalFns {
  and(a, b) { return a && b; }
  or(a, b) { return a || b; }
}

function flatten(ops) {
  if (ops.length === 0) throw new Error('At least one operand is required.');
  const flat = ops.flatMap((op) => (Array.isArray(op) ? op : [op]));
  if (flat.length === 0) throw new Error('At least one operand is required after flattening.');
  return flat;
}
class MathFns {
  // a list operand recurses through `this`, which a detached call does not have: the
  // pipe's math.add([1, 2], 3) is a TypeError
  add(...ops) { return ops.reduce((acc, op) => (Array.isArray(op) ? acc + this.add(...op) : acc + op), 0); }
  subtract(...ops) { return flatten(ops).reduce((acc, x, i) => (i === 0 ? acc : acc - x)); }
  multiply(...ops) {
    if (ops.length === 0) throw new Error('At least one operand is required.');
    return ops.reduce((acc, op) => (Array.isArray(op) ? acc * this.multiply(...op) : acc * op), 1);
  }
  divide(...ops) {
    const r = flatten(ops).reduce((acc, x, i) => (x === 0 ? NaN : i === 0 ? acc : acc / x));
    return isNaN(r) ? NaN : r;
  }
  atan2(y, x) { return Math.atan2(y, x); }
  hypot(...v) { return Math.hypot(...v); }
  imul(x, y) { return Math.imul(x, y); }
  max(...v) { return Math.max(...v); }
  min(...v) { return Math.min(...v); }
  pow(x, y) { return Math.pow(x, y); }
  random() { return Math.random(); }
}
for (const k of ['abs', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'cbrt', 'ceil', 'clz32', 'cos', 'cosh', 'exp',
  'expm1', 'floor', 'fround', 'log', 'log10', 'log1p', 'log2', 'round', 'sign', 'sin', 'sinh', 'sqrt', 'tan', 'tanh', 'trunc']) {
  MathFns.prototype[k] = function (x) { return Math[k](x); };
}

// no add/subtract/multiply/divide: the newest NumberHandler dropped them
class NumberFns {
  isFinite(x) { return Number.isFinite(x); }
  isEven(x) { return !isNaN(x) && x % 2 === 0; }
  isOdd(x) { return !isNaN(x) && x % 2 !== 0; }
  isInteger(x) { return Number.isInteger(x); }
  isNaN(x) { return Number.isNaN(x); }
  parseFloat(s) { return parseFloat(s); }
  parseInt(s, radix) { return parseInt(s, radix); }
  toFixed(x, d) { return x.toFixed(d); }
  toExponential(x, d) { return x.toExponential(d); }
  toPrecision(x, p) { return x.toPrecision(p); }
  gte(a, b) { return a >= b; }
  lte(a, b) { return a <= b; }
  gt(a, b) { return a > b; }
  lt(a, b) { return a < b; }
  max(...v) { return Math.max(...v); }
  min(...v) { return Math.min(...v); }
  pow(x, y) { return Math.pow(x, y); }
  round(x) { return Math.round(x); }
}
// Earlier versions of the original had number.add/subtract/multiply/divide as the
// math ones; hotmesh keeps them so apps written for those versions still deploy.
for (const fn of ['add', 'subtract', 'multiply', 'divide']) {
  NumberFns.prototype[fn] = MathFns.prototype[fn];
}

class ObjectFns {
  get(o, p) { return o?.[p]; }
  set(o, p, v) { if (!o) o = {}; o[p] = v; return o; }
  create(...args) { const o = {}; for (let i = 0; i < args.length; i += 2) o[args[i]] = args[i + 1]; return o; }
  keys(o) { return (o && Object.keys(o)) || []; }
  values(o) { return (o && Object.values(o)) || []; }
  entries(o) { return (o && Object.entries(o)) || []; }
  fromEntries(it) { return Object.fromEntries(it); }
  assign(t, ...s) { return Object.assign(t || {}, ...s); }
  getOwnPropertyNames(o) { return Object.getOwnPropertyNames(o || {}); }
  getOwnPropertySymbols(o) { return Object.getOwnPropertySymbols(o || {}); }
  getOwnPropertyDescriptor(o, p) { return Object.getOwnPropertyDescriptor(o || {}, p); }
  defineProperty(o, p, d) { return Object.defineProperty(o, p, d); }
  defineProperties(o, ps) { return Object.defineProperties(o, ps); }
  freeze(o) { return Object.freeze(o); }
  isFrozen(o) { return Object.isFrozen(o); }
  seal(o) { return Object.seal(o); }
  isSealed(o) { return Object.isSealed(o); }
  preventExtensions(o) { return Object.preventExtensions(o); }
  isExtensible(o) { return Object.isExtensible(o); }
  hasOwnProperty(o, p) { return Object.prototype.hasOwnProperty.call(o, p); }
  isPrototypeOf(o, p) { return Object.prototype.isPrototypeOf.call(o, p); }
  propertyIsEnumerable(o, p) { return Object.prototype.propertyIsEnumerable.call(o, p); }
}

class StringFns {
  split(s, d) { return s.split(d); }
  charAt(s, i) { return s.charAt(i); }
  concat(...parts) { return parts.join(''); }
  includes(s, x, p) { return s.includes(x, p); }
  indexOf(s, x, p) { return s.indexOf(x, p); }
  lastIndexOf(s, x, p) { return s.lastIndexOf(x, p); }
  slice(s, a, b) { return s.slice(a, b); }
  toLowerCase(s) { return s.toLowerCase(); }
  toUpperCase(s) { return s.toUpperCase(); }
  trim(s) { return s.trim(); }
  trimStart(s) { return s.trimStart(); }
  trimEnd(s) { return s.trimEnd(); }
  padStart(s, n, p) { return s.padStart(n, p); }
  padEnd(s, n, p) { return s.padEnd(n, p); }
  replace(s, a, b) { return s.replace(a, b); }
  search(s, r) { return s.search(r); }
  substring(s, a, b) { return s.substring(a, b); }
  startsWith(s, x, p) { return s.startsWith(x, p); }
  endsWith(s, x, n) { return s.endsWith(x, n); }
  repeat(s, n) {
    if (n < 0 || n === Infinity) throw new RangeError('Invalid repeat count. Must be a positive finite number.');
    return s.repeat(n);
  }
}

class SymbolFns {
  null() { return null; }
  undefined() { return undefined; }
  whitespace() { return ' '; }
  object() { return {}; }
  array() { return []; }
  posInfinity() { return Infinity; }
  negInfinity() { return -Infinity; }
  NaN() { return NaN; }
  date() { return new Date(); }
}

class UnaryFns {
  not(v) { return !v; }
  positive(v) { return +v; }
  negative(v) { return -v; }
  bitwise_not(v) { return ~v; }
}

const F = {
  array: new ArrayFns(), bitwise: new BitwiseFns(), conditional: new ConditionalFns(), cron: new CronFns(),
  date: new DateFns(), json: new JsonFns(), logical: new LogicalFns(), math: new MathFns(), number: new NumberFns(),
  object: new ObjectFns(), string: new StringFns(), symbol: new SymbolFns(), unary: new UnaryFns(),
};

// ---- the cases: [function, ...arguments]; a shorter list is a missing argument
const U = undefined;
const T = Date.UTC(2026, 10, 21, 15, 4, 5, 6); // a Saturday afternoon
const D = new Date(T);
const NOTE = 'naïve café 日本 😀';
const C = [];
const add = (fn, ...argLists) => argLists.forEach((args) => C.push([fn, ...args]));

add('array.get', [[1, 2, 3], 1], [[1, 2, 3], 5], [[1, 2], -1], ['abc', 1], [{ a: 1 }, 'a'], [[1], 'length'], [null, 0], [U, 0], [[], 0],
  [[1, 2, 3]], [[1, 2, 3], U], [[1, 2, 3], null], [[1, 2, 3], ''], [[1, 2, 3], NaN], [[1, 2, 3], false], [[1, 2, 3], 0], [[1, 2, 3], -0],
  [[1, 2, 3], '2'], [[1, 2, 3], 1.5], [[1, 2, 3], [1]], [[1, 2, 3], true], [null], [U], [], [5, 0], [true], ['abc'], [{ 0: 'z' }]);
add('array.length', [[1, 2, 3]], [[]], ['héllo'], [NOTE], [null], [U], [{ length: 4 }], [5], [], [{}], [true]);
add('array.concat', [[1], [2, 3]], [[1], 2], [[], []], ['ab', 'c'], [[1], [[2]]], [null, [1]], [5, 1], [[1]], [[1], U], [[1], null], ['ab'], [U, [1]], []);
add('array.indexOf', [[1, 2, 3, 2], 2], [[1, 2, 3, 2], 2, 2], [[1, '2'], 2], [[NaN], NaN], [[], 1], ['hello', 'l'], [[1, 2, 3], 3, -1], [U, 1],
  [[1, U], U], [[1, U]], [[null], null], [[1, 2], 2, U], [null, 1], []);
add('array.join', [[1, 2, 3], '-'], [[1, null, U, 'x'], U], [[], ','], [[[1, 2], 3], ';'], ['abc', ','], [[1.5, true, { a: 1 }], '|'],
  [[1, 2]], [[1, 2], null], [[1, 2], 0], [null, ','], [U], []);
add('array.lastIndexOf', [[1, 2, 1], 1], [[1, 2, 1], 1, 2], [[1, 2, 1], 1, -2], [[], 1], ['hello', 'l'], ['hello', 'l', 2], [[1, 2, 1], 3],
  [[1, 2, 1], 1, U], [[U, 1], U], [[1, 2]], [null, 1], [U], []);
add('array.pop', [[1, 2, 3]], [[]], [U], ['abc'], [null], [], [{}]);
add('array.push', [[1, 2], 3], [[1], 2, 3, 4], [[]], [U, 1], [[1], U], [[1], null], [[1], [2, 3]], [null, 1], ['ab', 'c'], [{}, 1], [], [5, 1]);
add('array.reverse', [[1, 2, 3]], [[]], [[1, [2, 3]]], ['abc'], [null], [U], [], [[1, U, null]]);
add('array.shift', [[1, 2, 3]], [[]], [U], [null], ['abc'], []);
add('array.slice', [[1, 2, 3, 4], 1, 3], [[1, 2, 3, 4], -2], [[1, 2, 3], U, U], [[1, 2, 3], 2, 1], ['hello', 1, -1], [[1, 2, 3], NaN, '2'], [U, 1],
  [[1, 2, 3]], [[1, 2, 3], null, null], [null], []);
const words = ['b', 'a', 'C', 'c', 'B', 'A', 'é', 'e', 'É', 'E', 'f', 'ä', 'a b', 'ab', 'a-b', 'a_b', '_', '-', ' ', '!', '@', '1', '10', '2',
  'ß', 'ss', 'z', 'Z', 'α', 'Ω', 'я', 'а', '日', '本', '😀', 'résumé', 'resume', 'Résumé', 'cote', 'côte', 'coté', 'côté', 'Ä', 'å', 'æ', 'ae',
  'ø', 'o', 'œ', 'oe', 'ñ', 'n', 'ç', 'c1', 'C1', 'x10', 'x9', '', 'a\u0301', 'á'];
const big = Array.from({ length: 90 }, (_, i) => words[(i * 37) % words.length] + (i % 3 ? '' : String.fromCharCode(97 + (i % 26))));
const nums = Array.from({ length: 80 }, (_, i) => ((i * 7919) % 101) - 50 + (i % 5 === 0 ? 0.5 : 0));
// lists the comparator cannot order consistently (NaN, strings against numbers, objects):
// V8's exact comparisons decide their order
let seed = 7;
const rnd = (n) => { seed = (seed * 48271) % 2147483647; return seed % n; }; // MINSTD
const pick = [() => rnd(20) - 5, () => String(rnd(12)), () => words[rnd(words.length)], () => NaN, () => null, () => U,
  () => rnd(2) === 0, () => ({ k: rnd(3) }), () => [rnd(4)], () => rnd(100) / 8];
const mixed = Array.from({ length: 12 }, (_, i) => Array.from({ length: 3 + i * 5 }, () => pick[rnd(pick.length)]()));
add('array.sort', [[3, 1, 2]], [[3, 1, 2], 'DESCENDING'], [['b', 'a', 'C']], [[10, 9, 1, 100]], [[2, U, 1]], [[]], [['b', 'a'], 'ASCENDING'], [5],
  [[2, null, 1]], [[2, null, 1], 'DESCENDING'], [[U, null, 2, U, 1, null], 'DESCENDING'], [[U, null, 2, U, 1, null]], [[3, 1, 2], 'desc'],
  [[3, 1, 2], 'asc'], [[3, 1, 2], 'ascending'], [[3, 1, 2], null], [[3, 1, 2], U], [[3, 1, 2], 0], [['10', '9', '2', '1']], [['10', 9, '2', 1]],
  [words], [words, 'DESCENDING'], [big], [big, 'DESCENDING'], [nums], [nums, 'DESCENDING'], [[...nums, null, U, null]],
  [['b', 1, 'a', 2, 'c', 0]], [[3, NaN, 1, NaN, 2]], [[3, NaN, 1, 2], 'DESCENDING'], [[{ a: 1 }, { b: 2 }, 1, 'x']], [[true, false, 2, 0, true]],
  [[[2], [10], [1]]], [[-0, 0, -0]], [[D, new Date(0), new Date(T + 1)]], [['b', null, 'a', U, 'B']], [[1, 1, '1', 1]],
  ...mixed.map((l) => [l]), ...mixed.map((l) => [l, 'DESCENDING']), ['abc'], [null], [U], [{}], []);
add('array.splice', [[1, 2, 3, 4], 1, 2], [[1, 2, 3, 4], 1], [[1, 2, 3], -1, 1], [[1, 2, 3], 0, 10, 'x'], [[], 0, 1], [U, 0, 1],
  [[1, 2, 3]], [[1, 2, 3], U, 1], [[1, 2, 3], 1, U], [[1, 2, 3], 1, null], [null, 0], []);
add('array.unshift', [[1, 2], 0], [[], 1, 2], [[1]], [null, 1], [[1], U], [U], ['ab', 'c'], []);

for (const fn of ['and', 'or', 'xor', 'leftShift', 'rightShift', 'unsignedRightShift']) {
  add('bitwise.' + fn, [5, 3], [-5, 2], [2 ** 32 + 5, 1], [1, 33], ['7', '1'], [NaN, 1], [U, null], [1.9, 1], [-1, 31], [[3], {}], [5], [], [null, null]);
}
for (const fn of ['equality', 'strict_equality', 'inequality', 'strict_inequality', 'greater_than', 'less_than', 'greater_than_or_equal', 'less_than_or_equal']) {
  add('conditional.' + fn, [1, 1], [1, '1'], [0, false], [null, U], [null, 0], [NaN, NaN], ['a', 'b'], ['10', '9'], ['10', 9], [[1], 1], [[], ''],
    [{}, '[object Object]'], [U, U], [true, 1], ['', 0], [-0, 0], [1], [], [null, null], [U, 0]);
}
add('conditional.ternary', [true, 'a', 'b'], [0, 'a', 'b'], ['', 1, 2], [[], 1, 2], [NaN, 1, 2], [U, 1], ['x', null, 2], [true], [], [null, 1, 2], [{}, 1]);
add('conditional.nullish', [null, 'd'], [U, 'd'], [0, 'd'], ['', 'd'], [false, 'd'], [NaN, 1], [U, U], [null], [], [5]);

add('cron.nextDelay', [5], [null], [U], [{}], [], [['0 0 * * *']], ['0 0 * * *'], ['1 day'], [''], ['*/5 * * * *'], ['0 0 * * * *'],
  ['0 0 31 2 *'], ['0 0 30 2 *'], ['0 0 31 4 *'], ['0 0 29 2 *'], ['0 0 0 * *'], ['5 4 * * 1-3,5'], ['0 0 * 2 6-1'], ['60 0 * * *'],
  ['0 24 * * *'], ['0 0 * 13 *'], ['0 0 * * 7'], ['0  0 * * *'], [' 0 0 * * *'], ['0 0 * * MON'], ['0 0 1,15 * *'], ['59 23 31 12 6']);

add('date.fromISOString', ['2026-11-21T15:04:05.006Z'], ['2026-11-21'], ['2026-11-21T10:00:00+02:00'], ['nope'], ['2026-02-30'],
  ['+020000-01-01T00:00:00.000Z'], [U], [], [null], [0], [T], [NaN], [true], [D], [{}], [8.64e15 + 1], [-1.5]);
add('date.parse', ['2026-11-21T15:04:05.006Z'], ['2026-11-21'], ['Sat Nov 21 2026 15:04:05 GMT+0000 (Coordinated Universal Time)'],
  ['Sat, 21 Nov 2026 15:04:05 GMT'], ['garbage'], [''], ['2026-13-01'], ['2026-11-21T24:00:00Z'], [U], [], [null], [{}], [D]);
const dateInputs = [[T], [D], ['2026-11-21'], ['2026-11-21T15:04:05Z'], ['2026-11-21T15:04:05.006Z'], [String(T)], ['1e3'], [-1], [0],
  [8.64e15 + 1], ['2026-13-45'], ['garbage'], [null], [U], [true], [{}], [], [NaN], [''], ['  42'], ['2026-11-21T15:04:05+01:00']];
for (const fn of ['getDate', 'getDay', 'getFullYear', 'getHours', 'getMilliseconds', 'getMinutes', 'getMonth', 'getSeconds', 'getTime',
  'getTimezoneOffset', 'getUTCDate', 'getUTCDay', 'getUTCFullYear', 'getUTCHours', 'getUTCMilliseconds', 'getUTCMinutes', 'getUTCMonth',
  'getUTCSeconds', 'toDateString', 'toISOString', 'toJSON', 'toString', 'valueOf', 'toLocaleDateString',
  'toLocaleString', 'toLocaleTimeString']) {
  add('date.' + fn, ...dateInputs);
}
// a falsy date means now, which tests/functions.rs checks against the clock
add('date.toISOXString', ...dateInputs.filter((x) => x[0]));
add('date.toLocaleString', [T, 'en-US'], [T, 'en-US', { timeZone: 'UTC' }], [Date.UTC(2026, 0, 1, 0, 0, 0)], [Date.UTC(2026, 0, 1, 12, 30, 0)],
  [Date.UTC(999, 0, 1)], [T, U, U], [T, U, { timeZone: 'UTC' }]);
add('date.toISOString', [-62198755200000], [253402300800000]);
add('date.toString', [-62198755200000], [Date.UTC(5, 0, 1)]);
add('date.UTC', [2026, 10, 21], [2026, 10, 21, 15, 4, 5, 6], [2026], [99, 0], [2026, 13, 1], [2026, 0, 0], ['2026', '1'], [NaN, 1], [U], [],
  [2026, 0, 1, 0, 0, 0, 0], [2026, 0, 1, 0, 0, 0], [null, null, null, null, null, null, null], [99.5, 0, 1, 0, 0, 0, 0]);
for (const fn of ['setMilliseconds', 'setMinutes', 'setMonth', 'setSeconds', 'setTime', 'setDate', 'setFullYear', 'setHours',
  'setUTCDate', 'setUTCFullYear', 'setUTCHours', 'setUTCMilliseconds', 'setUTCMinutes', 'setUTCMonth', 'setUTCSeconds']) {
  add('date.' + fn, [T, 5], [T, 5, 6, 7, 8], [T, -1, 0, 0, 0], [T, 40, 1, 1, 1], [T, NaN, 1, 1, 1], [T, '7', 0, 0, 0], ['garbage', 1], [null, 1],
    [T], [T, U, 0, 0, 0], [T, null, null, null, null], [U, 1], [], [D, 5, 0, 0, 0]);
}

add('json.stringify', [{ a: 1, b: [1, 'x', null, U], c: U }], [[NaN, Infinity, -0]], ['he said "hi"\n'], [U], [null], [D], [{ 2: 'b', 1: 'a', z: 0 }],
  [{ a: [1, { b: 2 }] }, null, 2], [{ a: 1 }, null, '--'], [NOTE], [1e21], [0.1], [], [{ a: 1 }, U, U], [{ a: [1] }, U, 4], [true], ['']);
add('json.parse', ['{"a":[1,2,{"b":null}]}'], ['"x"'], ['1e3'], ['nope'], ['{"a":1,}'], [''], ['[]'], ['  true '], [U], [], [null], [5],
  ['{"a":1}', 'reviver'], ['{"a":1}', U]);

add('logical.and', [true, 'b'], [0, 'b'], ['a', 0], ['', 1], [null, 1], [[], 'x'], [U, 1], [true], [], ['a', U]);
add('logical.or', [true, 'b'], [0, 'b'], ['a', 0], ['', 1], [null, U], [NaN, 'x'], [false], [], [0, null]);

const numberInputs = [[0], [-0], [1], [-1], [0.5], [-0.5], [2.5], [-2.5], [1e21], [1e-7], [123.456], [NaN], [Infinity], [-Infinity], ['4'], [''],
  [null], [U], [true], [[2]], [[1, 2]], ['0x10'], [' 12 '], [], [{}]];
for (const fn of ['abs', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'cbrt', 'ceil', 'clz32', 'cosh', 'exp', 'expm1', 'floor', 'fround',
  'log', 'log10', 'log1p', 'log2', 'round', 'sign', 'sinh', 'sqrt', 'tanh', 'trunc', 'cos', 'sin', 'tan']) {
  add('math.' + fn, ...numberInputs);
}
add('math.round', [0.49999999999999994], [-0.4], [4.5], [-4.5], [2 ** 52 + 0.5]);
add('math.add', [1, 2, 3], [[1, 2], 3], [1, '2'], ['a', 'b'], [], [null, U], [1, [2, [3]]], [0.1, 0.2], [true, 1], [D, 1], [[]], [5], [U], ['5'], [1, []]);
add('math.subtract', [10, 1, 2], [[10, 1], 2], ['5'], ['5', '2'], [], [[]], [1, U], [[1, 2], [3]], [U], [null], [[1, [2]]]);
add('math.multiply', [2, 3, 4], [[2, 3], 4], ['2', '3'], [], [[]], [2, null], [2, U], [U], ['4'], [2, []]);
add('math.divide', [10, 2], [10, 0], [0, 10], [[100, 2], 5], [10, '0'], ['10', '4'], [], [[]], [1, 3], [U, 1], [U], ['10'], [0], [10, -0], [10, null]);
for (const fn of ['add', 'subtract', 'multiply', 'divide']) add('number.' + fn, [6, 3], [[6, 3], 2], ['6', '3'], [], [U], [6, null]);
add('math.atan2', [1, 1], [-1, -1], [0, -0], [NaN, 1], ['1', '2'], [1], [], [null, null]);
add('math.hypot', [3, 4], [], [3, 4, 12], [NaN, Infinity], [-3], ['3', '4'], [1e200, 1e200], [U], [null, 3]);
add('math.imul', [3, 4], [0xffffffff, 5], [-5, 12], [2.5, 2], [NaN, 1], [3], [], ['3', '4']);
add('math.max', [1, 3, 2], [], [1, NaN], ['5', 2], [-0, 0], [[1, 2]], [null, -1], [U], [U, 1]);
add('math.min', [1, 3, 2], [], [1, NaN], ['5', 2], [0, -0], [[1]], [U, 1], [null, 1]);
add('math.pow', [2, 10], [2, 0.5], [-8, 1 / 3], [1, Infinity], [NaN, 0], [0, -1], ['2', '3'], [2, 1024], [-1, Infinity], [2], [], [U, 0], [null, 2]);

add('number.isFinite', [1], [Infinity], [NaN], ['1'], [null], [U], []);
add('number.isEven', [2], [3], [-4], [2.5], ['4'], [NaN], [null], [U], [[]], [Infinity], [], [''], [true]);
add('number.isOdd', [3], [2], [-3], [2.5], ['3'], [NaN], [null], [U], [Infinity], [], [[1]], [true]);
add('number.isInteger', [1], [1.5], [2 ** 60], ['1'], [Infinity], [-0], [NaN], [U], [], [null]);
add('number.isNaN', [NaN], ['NaN'], [U], [1], [0 / 0], [], [null]);
add('number.parseFloat', ['3.14abc'], ['  -1.5e3x'], ['.5'], ['abc'], [''], ['Infinityx'], [U], [null], [[1.5]], ['1e'], ['0x10'], [' \n42'], []);
add('number.parseInt', ['42px'], ['0x1F'], ['0x1F', 16], ['ff', 16], ['101', 2], ['z', 36], ['12', 1], ['12', 37], ['-7.9'], [''], [U], [null],
  ['  +5'], [1e21], [0.0000005], ['9007199254740993'], [], ['12', U], ['12', null], ['12', 0], ['0x1F', 10]);
const fmt = [[123.456, 2], [0.5, 0], [1.5, 0], [2.5, 0], [1.005, 2], [1.45, 1], [-1.5, 0], [-0.0001, 2], [1e21, 2], [0, 3], [NaN, 2], [123.456, U],
  [0.000001234, 2], [99.99, 1], [5e-7, 4], [-0, 1], [123456789, 3], [1, 101], ['5', 1], [U, 1], [123.456], [null, 1], [], [1.5, null]];
add('number.toFixed', ...fmt);
add('number.toExponential', ...fmt, [0, U], [123456, U], [9.95, 1]);
add('number.toPrecision', ...fmt.filter((x) => x[1] !== 0 && x[1] !== null), [0.00001234, 2], [123456, 2], [1e-7, 3], [999.99, 3], [Infinity, 2], [0, 1]);
for (const fn of ['gte', 'lte', 'gt', 'lt']) add('number.' + fn, [1, 2], [2, 2], ['10', '9'], [10, '9'], [NaN, 1], [null, 0], [U, 0], ['a', 'b'], [1], []);
add('number.max', [1, 5, 3], [], ['7', 2], [U, 1], [null, -1]);
add('number.min', [1, 5, 3], [], [NaN, 2], [U], [null, 1]);
add('number.pow', [3, 2], ['2', 8], [U, 2], [2], []);
add('number.round', [2.5], [-2.5], ['1.5'], [NaN], [U], [], [null], [-0.5]);

const O = { b: 1, a: [1, 2], c: { d: null } };
add('object.get', [O, 'b'], [O, 'x'], [null, 'a'], [U, 'a'], [[5, 6], 1], ['abc', 'length'], [O, 'c'], [O], [O, U], [O, null], [null], [U], [],
  [{ undefined: 1 }], [{ null: 2 }, null], [5, 'x'], [true, 'x'], [[5, 6], '1'], ['abc', 1]);
add('object.set', [{ a: 1 }, 'b', 2], [null, 'a', 1], [U, 'a', [1]], [[1, 2], 3, 'x'], [{ a: 1 }, 'a', U], ['abc', 'x', 1], [0, 'a', 1], [5, 'a', 1],
  [{ a: 1 }, 'b'], [{ a: 1 }], [], ['', 'a', 1], [{ a: 1 }, null, 2], [false, 'k', 'v']);
add('object.create', ['a', 1, 'b', 2], [], ['a'], [1, 'x', null, 'y'], ['a', 1, 'a', 2], [U, 1], [U], [{}, 1], [[1, 2], 3]);
for (const fn of ['keys', 'values', 'entries', 'getOwnPropertyNames']) {
  add('object.' + fn, [O], [{}], [[7, 8]], ['hi'], [''], [null], [U], [5], [{ 10: 'x', 2: 'y', b: 'z', a: 'w' }], [], [0], [true], [false]);
}
add('object.fromEntries', [[['a', 1], ['b', 2]]], [[]], [[['a', 1], ['a', 2]]], [[[1, 'x']]], [null], [[5]], [U], [], [[['a']]], [[[]]]);
add('object.assign', [{ a: 1 }, { b: 2 }, { a: 3 }], [null, { a: 1 }], [{}, null, U, 'xy'], [{ a: 1 }], [], [U], [0, { a: 1 }], [[1, 2], { 0: 'x' }], [[1, 2], { 3: 'x', length: 5 }], ['ab', { x: 1 }], ['ab', { 0: 'z' }], ['ab', { 5: 'z' }], [5, { a: 1 }],
  [{ a: 1 }, [7, 8]], [{ a: 1 }, 'xy']);
add('object.getOwnPropertySymbols', [O], [null], [U], [], [5]);
add('object.getOwnPropertyDescriptor', [O, 'b'], [O, 'zz'], [[1], 'length'], [[1], 0], [null, 'a'], [U], [], ['ab', 0], [O]);
add('object.defineProperty', [{}, 'a', { value: 1 }], [{}, 'a', { value: 1, enumerable: true }], [{ a: 1 }, 'a', { value: 2 }], [null, 'a', { value: 1 }],
  [{}, 'a', 5], [{}, 'a'], [], [{}, 'a', {}]);
add('object.defineProperties', [{}, { a: { value: 1 }, b: { value: 2, enumerable: true } }], [{ a: 1 }, { a: { value: 3 } }], [{}], [], [null, {}], [{}, null]);
add('object.freeze', [{ a: 1 }], [5], [[1]], [U], [], [null]);
add('object.isFrozen', [{ a: 1 }], [5], [{}], ['s'], [null], [U], []);
add('object.seal', [{ a: 1 }], ['x'], [U], []);
add('object.isSealed', [{ a: 1 }], [5], [U], [], [null]);
add('object.preventExtensions', [{ a: 1 }], [1], [U], []);
add('object.isExtensible', [{ a: 1 }], [5], [[1]], [null], [U], []);
add('object.hasOwnProperty', [O, 'b'], [O, 'toString'], [[1], 0], [[1], 'length'], ['ab', 1], ['ab', 5], [null, 'a'], [5, 'a'], [O], [U, 'a'], [],
  [{ undefined: 1 }]);
add('object.isPrototypeOf', [O, {}], [{}, []], [U, {}], [], [null, 5], [O]);
add('object.propertyIsEnumerable', [O, 'b'], [[1], 'length'], [[1], 0], [O, 'zz'], [O], [null, 'a'], [], [{ undefined: 1 }]);

add('string.split', ['a,b,,c', ','], ['abc', ''], ['abc', U], ['', ','], [NOTE, ' '], ['😀x', ''], ['a1b1', 1], [U, ','], [5, ','], ['abc'], [], [null, ','],
  ['a,b', null]);
add('string.charAt', ['hello', 1], ['hello', 10], ['hello', -1], ['😀', 0], ['abc', U], ['abc', '1'], [null, 0], ['abc'], [], ['abc', NaN], ['abc', null]);
add('string.concat', ['a', 'b', 'c'], ['a', 1, true, null, U], [], [[1, 2], { a: 1 }], [U], [null], ['a', [null, U]]);
add('string.includes', ['hello', 'ell'], ['hello', 'ell', 2], ['hello', ''], ['hello', U], [[1, 2], 2], [NOTE, '日本'], [null, 'a'], ['hello'],
  ['undefined'], [], ['hello', 'l', U], ['null', null]);
add('string.indexOf', ['hello', 'l'], ['hello', 'l', 3], ['hello', 'z'], ['hello', ''], ['hello', '', 10], [NOTE, '😀'], [[1, 2], 2], [5, '5'],
  ['hello'], ['an undefined', U], [], ['hello', 'l', U], [U, 'a']);
add('string.lastIndexOf', ['hello', 'l'], ['hello', 'l', 2], ['hello', 'z'], ['hello', '', 2], ['hello', 'l', NaN], [[1, 2, 1], 1], ['hello'],
  ['hello', 'l', U], ['hello', 'l', null], [], [null, 'a']);
add('string.slice', ['hello', 1, 3], ['hello', -3], ['hello', 3, 1], ['😀ab', 1], ['hello', U, U], [5, 1], ['hello'], [], [null], ['hello', null, null]);
add('string.toLowerCase', ['HeLLo'], ['İSTANBUL'], ['ΣΑΣ'], [NOTE], [''], [null], [5], [U], []);
add('string.toUpperCase', ['hello'], ['straße'], ['ǆ'], [NOTE], [''], [U], [true], [], [null]);
add('string.trim', ['  a b  '], ['\t\n x \u00a0\u2028'], ['\u0085x\u0085'], ['\ufeffx'], [''], [null], [U], [], [5]);
add('string.trimStart', ['  a  '], ['\u3000x'], [U], [], [null]);
add('string.trimEnd', ['  a  '], ['x\u3000'], [U], [], [null]);
add('string.padStart', ['5', 3, '0'], ['abc', 6], ['abc', 2, '*'], ['abc', 8, 'xy'], ['abc', 5, ''], ['😀', 4, '-'], [5, 3, '0'], ['abc'], [],
  ['abc', 5, U], ['abc', 5, null], ['abc', null], [U, 3]);
add('string.padEnd', ['5', 3, '0'], ['abc', 6], ['abc', 8, 'xy'], ['abc', NaN], ['abc'], [], ['abc', 5, U], ['abc', '5', 0], [null, 3]);
add('string.replace', ['a-b-c', '-', '+'], ['abc', 'x', 'y'], ['abc', 'b', '[$&]'], ['abc', 'b', '$`|$\''], ['abc', 'b', '$$'], ['abc', 'b', '$1'],
  ['aaa', '', 'x'], [null, 'a', 'b'], ['abc', 'b'], ['abc'], [], ['a undefined b', U, 'x'], ['a null', null, 1], ['a1', 1, 2]);
add('string.search', ['hello', 'l+'], ['hello', 'z'], ['abc123', '\\d'], ['😀a', 'a'], ['hello', U], ['a.b', '.'], ['x', '('], [5, '5'], ['hello'], [],
  ['xnullx', null], [U, 'a']);
add('string.substring', ['hello', 1, 3], ['hello', 3, 1], ['hello', -2], ['hello', 2], ['hello', NaN, 2], ['hello', 1, 99], ['hello'], [],
  ['hello', U, 2], ['hello', null, null], [null, 1]);
add('string.startsWith', ['hello', 'he'], ['hello', 'll', 2], ['hello', ''], ['hello', 'x'], ['hello', U], [null, 'a'], ['hello'], ['undefined!'], [],
  ['hello', 'he', U], ['hello', 'he', null]);
add('string.endsWith', ['hello', 'lo'], ['hello', 'l', 4], ['hello', 'he', 2], ['hello', ''], ['hello', 'x'], ['hello'], ['is undefined'], [],
  ['hello', 'lo', U], ['hello', 'lo', null], [U, 'a']);
add('string.repeat', ['ab', 3], ['ab', 0], ['ab', -1], ['ab', Infinity], ['ab', 2.7], ['ab', '2'], [5, 2], ['ab'], [], ['ab', U], ['ab', null],
  ['ab', NaN], ['ab', '-1'], [null, 2]);

for (const fn of Object.getOwnPropertyNames(SymbolFns.prototype)) {
  if (fn !== 'constructor' && fn !== 'date') add('symbol.' + fn, [], [1], [U, 'x']);
}
for (const fn of ['not', 'positive', 'negative', 'bitwise_not']) {
  add('unary.' + fn, [1], [0], [-0], [''], ['x'], ['12'], [null], [U], [[]], [[5]], [{}], [NaN], [true], [2 ** 32 + 3], [D], []);
}

// ---- run them the way the original's pipe does, and encode what JSON cannot hold
function enc(v) {
  if (v === undefined) return { $undefined: true };
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { $number: 'NaN' };
    if (v === Infinity) return { $number: 'Infinity' };
    if (v === -Infinity) return { $number: '-Infinity' };
    if (Object.is(v, -0)) return { $number: '-0' };
    return v;
  }
  if (v instanceof Date) return { $date: enc(v.getTime()) };
  // JSON cannot carry a lone surrogate; hotmesh replaces it with U+FFFD
  if (typeof v === 'string' && !v.isWellFormed()) return v.toWellFormed();
  if (Array.isArray(v)) return Array.from(v, enc);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = enc(v[k]);
    return { $object: Object.entries(o) };
  }
  return v;
}
function clone(v) {
  if (v instanceof Date) return new Date(v.getTime());
  if (Array.isArray(v)) return v.map(clone);
  if (v && typeof v === 'object') { const o = {}; for (const k of Object.keys(v)) o[k] = clone(v[k]); return o; }
  return v;
}
const rows = C.map(([name, ...args]) => {
  const [group, method] = name.split('.');
  const fn = F[group][method];
  if (typeof fn !== 'function') throw new Error('no oracle for ' + name);
  let result;
  try {
    result = enc(fn(...clone(args))); // detached, as Pipe.resolveFunction(name)(...row)
  } catch (e) {
    if (e.code === 'MODULE_NOT_FOUND') throw e;
    result = { $error: String(e.message || e) };
  }
  return { fn: name, args: args.map(enc), result };
});
const locale = Intl.Collator().resolvedOptions().locale;
const header = `node ${process.version}, ICU ${process.versions.icu}, locale ${locale}, TZ=${process.env.TZ || ''}`;
process.stdout.write(JSON.stringify({ generated_by: header, cases: rows }, null, 0) + '\n');
