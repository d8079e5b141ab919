// The reference for hotmesh's function catalog: JavaScript itself.
//
// Each function below mirrors how the original HotMesh wrapper calls the JavaScript
// built-in (written from the spec, ../shared/spec/hotmesh-semantics.md §3). Node runs
// every case and writes table.json, which the Rust test (tests/functions.rs) replays
// against hotmesh's implementation. Regenerate with:
//   TZ=UTC node manifest/tests/functions/oracle.js > manifest/tests/functions/table.json
'use strict';

function dateOf(input) {
  const ISO = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z)?$/;
  if (typeof input === 'string') {
    if (ISO.test(input)) return new Date(input);
    const ms = parseInt(input, 10);
    if (!isNaN(ms)) return new Date(ms);
  } else if (input instanceof Date) {
    return input;
  } else if (typeof input === 'number') {
    return new Date(input);
  }
  throw new Error('Invalid date format');
}
function flat(ops) {
  let out = [];
  ops.forEach((op) => { if (Array.isArray(op)) out = [...out, ...op]; else out.push(op); });
  return out;
}
const math = {
  add(...ops) { return ops.reduce((a, b) => Array.isArray(b) ? a + math.add(...b) : a + b, 0); },
  subtract(...ops) {
    if (ops.length === 0) throw new Error('At least one operand is required.');
    const f = flat(ops);
    if (f.length === 0) throw new Error('At least one operand is required after flattening.');
    return f.reduce((a, b, i) => (i === 0 ? a : a - b));
  },
  multiply(...ops) {
    if (ops.length === 0) throw new Error('At least one operand is required.');
    return ops.reduce((a, b) => Array.isArray(b) ? a * math.multiply(...b) : a * b, 1);
  },
  divide(...ops) {
    if (ops.length === 0) throw new Error('At least one operand is required.');
    const f = flat(ops);
    if (f.length === 0) throw new Error('At least one operand is required after flattening.');
    const r = f.reduce((a, b, i) => { if (b === 0) return NaN; return i === 0 ? a : a / b; });
    return isNaN(r) ? NaN : r;
  },
};
for (const k of ['abs', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'cbrt', 'ceil', 'clz32', 'cos', 'cosh', 'exp',
  'expm1', 'floor', 'fround', 'log', 'log10', 'log1p', 'log2', 'round', 'sign', 'sin', 'sinh', 'sqrt', 'tan', 'tanh', 'trunc']) {
  math[k] = (x) => Math[k](x);
}
math.atan2 = (y, x) => Math.atan2(y, x);
math.hypot = (...v) => Math.hypot(...v);
math.imul = (x, y) => Math.imul(x, y);
math.max = (...v) => Math.max(...v);
math.min = (...v) => Math.min(...v);
math.pow = (x, y) => Math.pow(x, y);

const F = {
  array: {
    get: (a, i) => a[i],
    length: (a) => a?.length,
    concat: (a, b) => a.concat(b),
    indexOf: (a, x, from) => a.indexOf(x, from),
    join: (a, sep) => a.join(sep),
    lastIndexOf: (a, x, from) => a.lastIndexOf(x, from),
    pop: (a) => a.pop(),
    push: (a, ...items) => a.push(...items),
    reverse: (a) => a.reverse(),
    shift: (a) => a.shift(),
    slice: (a, s, e) => a.slice(s, e),
    sort: (a, order = 'ASCENDING') => {
      const desc = typeof order === 'string' && /^(descending|desc)$/i.test(order);
      return [...a].sort((x, y) => {
        if (x === undefined && y === undefined) return 0;
        if (x === undefined) return 1;
        if (y === undefined) return -1;
        const o = x < y ? -1 : x > y ? 1 : 0;
        return desc ? -o : o;
      });
    },
    splice: (a, start, count, ...items) => a.splice(start, count, ...items),
    unshift: (a, ...items) => a.unshift(...items),
  },
  bitwise: {
    and: (a, b) => a & b, or: (a, b) => a | b, xor: (a, b) => a ^ b,
    leftShift: (a, b) => a << b, rightShift: (a, b) => a >> b, unsignedRightShift: (a, b) => a >>> b,
  },
  conditional: {
    ternary: (c, t, f) => (c ? t : f),
    equality: (a, b) => a == b, strict_equality: (a, b) => a === b,
    inequality: (a, b) => a != b, strict_inequality: (a, b) => a !== b,
    greater_than: (a, b) => a > b, less_than: (a, b) => a < b,
    greater_than_or_equal: (a, b) => a >= b, less_than_or_equal: (a, b) => a <= b,
    nullish: (a, b) => a ?? b,
  },
  date: {
    fromISOString: (s) => new Date(s),
    parse: (s) => Date.parse(s),
    yyyymmdd: (d) => { const x = d === undefined ? new Date() : dateOf(d); return x.toISOString().slice(0, 10); },
    toISOXString: (d) => (d ? dateOf(d) : new Date()).toISOString().replace(/[:TZ-]/g, ''),
    toLocaleDateString: (d, l, o) => dateOf(d).toLocaleDateString(l, o),
    toLocaleString: (d, l, o) => dateOf(d).toLocaleString(l, o),
    toLocaleTimeString: (d, l, o) => dateOf(d).toLocaleTimeString(l, o),
    UTC: (y, m, d, h, mi, s, ms) => Date.UTC(y, m, d, h, mi, s, ms),
    setMinutes: (d, m, s, ms) => dateOf(d).setMinutes(m, s, ms),
    setMonth: (d, m, day) => dateOf(d).setMonth(m, day),
    setSeconds: (d, s, ms) => dateOf(d).setSeconds(s, ms),
    setFullYear: (d, y, m, day) => dateOf(d).setFullYear(y, m, day),
    setHours: (d, h, m, s, ms) => dateOf(d).setHours(h, m, s, ms),
    setUTCFullYear: (d, y, m, day) => dateOf(d).setUTCFullYear(y, m, day),
    setUTCHours: (d, h, m, s, ms) => dateOf(d).setUTCHours(h, m, s, ms),
    setUTCMinutes: (d, m, s, ms) => dateOf(d).setUTCMinutes(m, s, ms),
    setUTCMonth: (d, m, day) => dateOf(d).setUTCMonth(m, day),
    setUTCSeconds: (d, s, ms) => dateOf(d).setUTCSeconds(s, ms),
  },
  json: { stringify: (v, r, s) => JSON.stringify(v, r, s), parse: (t) => JSON.parse(t) },
  logical: { and: (a, b) => a && b, or: (a, b) => a || b },
  math,
  number: {
    isFinite: (x) => Number.isFinite(x), isEven: (x) => !isNaN(x) && x % 2 === 0, isOdd: (x) => !isNaN(x) && x % 2 !== 0,
    isInteger: (x) => Number.isInteger(x), isNaN: (x) => Number.isNaN(x),
    parseFloat: (s) => parseFloat(s), parseInt: (s, r) => parseInt(s, r),
    toFixed: (x, d) => x.toFixed(d), toExponential: (x, d) => x.toExponential(d), toPrecision: (x, p) => x.toPrecision(p),
    gte: (a, b) => a >= b, lte: (a, b) => a <= b, gt: (a, b) => a > b, lt: (a, b) => a < b,
    max: math.max, min: math.min, pow: math.pow, round: (x) => Math.round(x),
    add: math.add, subtract: math.subtract, multiply: math.multiply, divide: math.divide,
  },
  object: {
    get: (o, p) => o?.[p],
    set: (o, p, v) => { if (!o) o = {}; o[p] = v; return o; },
    create: (...args) => { const o = {}; for (let i = 0; i < args.length; i += 2) o[args[i]] = args[i + 1]; return o; },
    keys: (o) => (o && Object.keys(o)) || [],
    values: (o) => (o && Object.values(o)) || [],
    entries: (o) => (o && Object.entries(o)) || [],
    fromEntries: (it) => Object.fromEntries(it),
    assign: (t, ...s) => Object.assign(t || {}, ...s),
    getOwnPropertyNames: (o) => Object.getOwnPropertyNames(o || {}),
    getOwnPropertySymbols: (o) => Object.getOwnPropertySymbols(o || {}),
    getOwnPropertyDescriptor: (o, p) => Object.getOwnPropertyDescriptor(o || {}, p),
    defineProperty: (o, p, d) => Object.defineProperty(o, p, d),
    defineProperties: (o, ps) => Object.defineProperties(o, ps),
    freeze: (o) => Object.freeze(o), isFrozen: (o) => Object.isFrozen(o),
    seal: (o) => Object.seal(o), isSealed: (o) => Object.isSealed(o),
    preventExtensions: (o) => Object.preventExtensions(o), isExtensible: (o) => Object.isExtensible(o),
    hasOwnProperty: (o, p) => Object.prototype.hasOwnProperty.call(o, p),
    isPrototypeOf: (o, p) => Object.prototype.isPrototypeOf.call(o, p),
    propertyIsEnumerable: (o, p) => Object.prototype.propertyIsEnumerable.call(o, p),
  },
  string: {
    split: (s, d) => s.split(d), charAt: (s, i) => s.charAt(i), concat: (...s) => s.join(''),
    includes: (s, x, p) => s.includes(x, p), indexOf: (s, x, p) => s.indexOf(x, p), lastIndexOf: (s, x, p) => s.lastIndexOf(x, p),
    slice: (s, a, b) => s.slice(a, b), toLowerCase: (s) => s.toLowerCase(), toUpperCase: (s) => s.toUpperCase(),
    trim: (s) => s.trim(), trimStart: (s) => s.trimStart(), trimEnd: (s) => s.trimEnd(),
    padStart: (s, n, p) => s.padStart(n, p), padEnd: (s, n, p) => s.padEnd(n, p),
    replace: (s, a, b) => s.replace(a, b), search: (s, r) => s.search(r), substring: (s, a, b) => s.substring(a, b),
    startsWith: (s, x, p) => s.startsWith(x, p), endsWith: (s, x, n) => s.endsWith(x, n),
    repeat: (s, n) => { if (n < 0 || n === Infinity) throw new RangeError('Invalid repeat count.'); return s.repeat(n); },
  },
  symbol: {
    null: () => null, undefined: () => undefined, whitespace: () => ' ', object: () => ({}), array: () => [],
    posInfinity: () => Infinity, negInfinity: () => -Infinity, NaN: () => NaN,
  },
  unary: { not: (v) => !v, positive: (v) => +v, negative: (v) => -v, bitwise_not: (v) => ~v },
  cron: { nextDelay: (e) => (typeof e === 'string' ? 'checked in Rust' : -1) },
};
for (const k of ['getDate', 'getDay', 'getFullYear', 'getHours', 'getMilliseconds', 'getMinutes', 'getMonth', 'getSeconds',
  'getTime', 'getTimezoneOffset', 'getUTCDate', 'getUTCDay', 'getUTCFullYear', 'getUTCHours', 'getUTCMilliseconds',
  'getUTCMinutes', 'getUTCMonth', 'getUTCSeconds', 'toDateString', 'toISOString', 'toJSON', 'toString', 'valueOf']) {
  F.date[k] = (d) => dateOf(d)[k]();
}
for (const k of ['setMilliseconds', 'setTime', 'setDate', 'setUTCDate', 'setUTCMilliseconds']) {
  F.date[k] = (d, x) => dateOf(d)[k](x);
}

// ---- the cases: [function, ...arguments]
const U = undefined;
const T = Date.UTC(2026, 10, 21, 15, 4, 5, 6); // a Saturday afternoon
const D = new Date(T);
const NOTE = 'naïve café 日本 😀';
const C = [];
const add = (fn, ...argLists) => argLists.forEach((args) => C.push([fn, ...args]));
const odd = [[U], [null], [NaN], [''], [[]], [{}], [true]];

add('array.get', [[1, 2, 3], 1], [[1, 2, 3], 5], [[1, 2], -1], ['abc', 1], [{ a: 1 }, 'a'], [[1], 'length'], [null, 0], [U, 0], [[], 0]);
add('array.length', [[1, 2, 3]], [[]], ['héllo'], [NOTE], [null], [U], [{ length: 4 }], [5]);
add('array.concat', [[1], [2, 3]], [[1], 2], [[], []], ['ab', 'c'], [[1], [[2]]], [null, [1]], [5, 1]);
add('array.indexOf', [[1, 2, 3, 2], 2], [[1, 2, 3, 2], 2, 2], [[1, '2'], 2], [[NaN], NaN], [[], 1], ['hello', 'l'], [[1, 2, 3], 3, -1], [U, 1]);
add('array.join', [[1, 2, 3], '-'], [[1, null, U, 'x'], U], [[], ','], [[[1, 2], 3], ';'], ['abc', ','], [[1.5, true, { a: 1 }], '|']);
add('array.lastIndexOf', [[1, 2, 1], 1], [[1, 2, 1], 1, 2], [[1, 2, 1], 1, -2], [[], 1], ['hello', 'l'], ['hello', 'l', 2], [[1, 2, 1], 3]);
add('array.pop', [[1, 2, 3]], [[]], [U], ['abc']);
add('array.push', [[1, 2], 3], [[1], 2, 3, 4], [[]], [U, 1]);
add('array.reverse', [[1, 2, 3]], [[]], [[1, [2, 3]]], ['abc'], [null]);
add('array.shift', [[1, 2, 3]], [[]], [U]);
add('array.slice', [[1, 2, 3, 4], 1, 3], [[1, 2, 3, 4], -2], [[1, 2, 3], U, U], [[1, 2, 3], 2, 1], ['hello', 1, -1], [[1, 2, 3], NaN, '2'], [U, 1]);
add('array.sort', [[3, 1, 2]], [[3, 1, 2], 'DESCENDING'], [['b', 'a', 'C']], [[10, 9, 1, 100]], [[2, U, 1]], [[]], [['b', 'a'], 'ASCENDING'], [5]);
add('array.splice', [[1, 2, 3, 4], 1, 2], [[1, 2, 3, 4], 1], [[1, 2, 3], -1, 1], [[1, 2, 3], 0, 10, 'x'], [[], 0, 1], [U, 0, 1]);
add('array.unshift', [[1, 2], 0], [[], 1, 2], [[1]], [null, 1]);

for (const fn of ['and', 'or', 'xor', 'leftShift', 'rightShift', 'unsignedRightShift']) {
  add('bitwise.' + fn, [5, 3], [-5, 2], [2 ** 32 + 5, 1], [1, 33], ['7', '1'], [NaN, 1], [U, null], [1.9, 1], [-1, 31], [[3], {}]);
}
for (const fn of ['equality', 'strict_equality', 'inequality', 'strict_inequality', 'greater_than', 'less_than', 'greater_than_or_equal', 'less_than_or_equal']) {
  add('conditional.' + fn, [1, 1], [1, '1'], [0, false], [null, U], [null, 0], [NaN, NaN], ['a', 'b'], ['10', '9'], ['10', 9], [[1], 1], [[], ''], [{}, '[object Object]'], [U, U], [true, 1], ['', 0], [-0, 0]);
}
add('conditional.ternary', [true, 'a', 'b'], [0, 'a', 'b'], ['', 1, 2], [[], 1, 2], [NaN, 1, 2], [U, 1], ['x', null, 2]);
add('conditional.nullish', [null, 'd'], [U, 'd'], [0, 'd'], ['', 'd'], [false, 'd'], [NaN, 1], [U, U]);

add('date.fromISOString', ['2026-11-21T15:04:05.006Z'], ['2026-11-21'], ['2026-11-21T10:00:00+02:00'], ['nope'], ['2026-02-30'], ['+020000-01-01T00:00:00.000Z']);
add('date.parse', ['2026-11-21T15:04:05.006Z'], ['2026-11-21'], ['Sat Nov 21 2026 15:04:05 GMT+0000 (Coordinated Universal Time)'], ['Sat, 21 Nov 2026 15:04:05 GMT'], ['garbage'], [''], ['2026-13-01'], ['2026-11-21T24:00:00Z']);
add('date.yyyymmdd', [T], ['2026-01-05'], [D], ['1700000000000'], [{}]);
const dateInputs = [[T], [D], ['2026-11-21'], ['2026-11-21T15:04:05Z'], ['2026-11-21T15:04:05.006Z'], [String(T)], ['1e3'], [-1], [0], [8.64e15 + 1], ['2026-13-45'], ['garbage'], [null], [U], [true], [{}]];
for (const fn of ['getDate', 'getDay', 'getFullYear', 'getHours', 'getMilliseconds', 'getMinutes', 'getMonth', 'getSeconds', 'getTime',
  'getTimezoneOffset', 'getUTCDate', 'getUTCDay', 'getUTCFullYear', 'getUTCHours', 'getUTCMilliseconds', 'getUTCMinutes', 'getUTCMonth',
  'getUTCSeconds', 'toDateString', 'toISOString', 'toJSON', 'toString', 'valueOf', 'toLocaleDateString',
  'toLocaleString', 'toLocaleTimeString']) {
  add('date.' + fn, ...dateInputs);
}
// a falsy date means now, which the clock test covers
add('date.toISOXString', ...dateInputs.filter((x) => x[0]));
add('date.toLocaleString', [T, 'en-US'], [T, 'en-US', { timeZone: 'UTC' }], [Date.UTC(2026, 0, 1, 0, 0, 0)], [Date.UTC(2026, 0, 1, 12, 30, 0)], [Date.UTC(999, 0, 1)]);
add('date.toISOString', [-62198755200000], [253402300800000]);
add('date.toString', [-62198755200000], [Date.UTC(5, 0, 1)]);
add('date.UTC', [2026, 10, 21], [2026, 10, 21, 15, 4, 5, 6], [2026], [99, 0], [2026, 13, 1], [2026, 0, 0], ['2026', '1'], [NaN, 1], [U]);
for (const fn of ['setMilliseconds', 'setMinutes', 'setMonth', 'setSeconds', 'setTime', 'setDate', 'setFullYear', 'setHours',
  'setUTCDate', 'setUTCFullYear', 'setUTCHours', 'setUTCMilliseconds', 'setUTCMinutes', 'setUTCMonth', 'setUTCSeconds']) {
  add('date.' + fn, [T, 5], [T, 5, 6, 7, 8], [T, -1, 0, 0, 0], [T, 40, 1, 1, 1], [T, NaN, 1, 1, 1], [T, '7', 0, 0, 0], ['garbage', 1], [null, 1]);
}

add('json.stringify', [{ a: 1, b: [1, 'x', null, U], c: U }], [[NaN, Infinity, -0]], ['he said "hi"\n'], [U], [null], [D], [{ 2: 'b', 1: 'a', z: 0 }], [{ a: [1, { b: 2 }] }, null, 2], [{ a: 1 }, null, '--'], [NOTE], [1e21], [0.1]);
add('json.parse', ['{"a":[1,2,{"b":null}]}'], ['"x"'], ['1e3'], ['nope'], ['{"a":1,}'], [''], ['[]'], ['  true '], [U]);

add('logical.and', [true, 'b'], [0, 'b'], ['a', 0], ['', 1], [null, 1], [[], 'x'], [U, 1]);
add('logical.or', [true, 'b'], [0, 'b'], ['a', 0], ['', 1], [null, U], [NaN, 'x']);

const nums = [[0], [-0], [1], [-1], [0.5], [-0.5], [2.5], [-2.5], [1e21], [1e-7], [123.456], [NaN], [Infinity], [-Infinity], ['4'], [''], [null], [U], [true], [[2]], [[1, 2]], ['0x10'], [' 12 ']];
for (const fn of ['abs', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'cbrt', 'ceil', 'clz32', 'cosh', 'exp', 'expm1', 'floor', 'fround',
  'log', 'log10', 'log1p', 'log2', 'round', 'sign', 'sinh', 'sqrt', 'tanh', 'trunc', 'cos', 'sin', 'tan']) {
  add('math.' + fn, ...nums);
}
add('math.round', [0.49999999999999994], [-0.4], [4.5], [-4.5], [2 ** 52 + 0.5]);
add('math.add', [1, 2, 3], [[1, 2], 3], [1, '2'], ['a', 'b'], [], [null, U], [1, [2, [3]]], [0.1, 0.2], [true, 1], [D, 1]);
add('math.subtract', [10, 1, 2], [[10, 1], 2], ['5'], ['5', '2'], [], [[]], [1, U], [[1, 2], [3]]);
add('math.multiply', [2, 3, 4], [[2, 3], 4], ['2', '3'], [], [[]], [2, null], [2, U]);
add('math.divide', [10, 2], [10, 0], [0, 10], [[100, 2], 5], [10, '0'], ['10', '4'], [], [[]], [1, 3], [U, 1]);
add('math.atan2', [1, 1], [-1, -1], [0, -0], [NaN, 1], ['1', '2']);
add('math.hypot', [3, 4], [], [3, 4, 12], [NaN, Infinity], [-3], ['3', '4'], [1e200, 1e200]);
add('math.imul', [3, 4], [0xffffffff, 5], [-5, 12], [2.5, 2], [NaN, 1]);
add('math.max', [1, 3, 2], [], [1, NaN], ['5', 2], [-0, 0], [[1, 2]], [null, -1]);
add('math.min', [1, 3, 2], [], [1, NaN], ['5', 2], [0, -0], [[1]], [U, 1]);
add('math.pow', [2, 10], [2, 0.5], [-8, 1 / 3], [1, Infinity], [NaN, 0], [0, -1], ['2', '3'], [2, 1024], [-1, Infinity]);

add('number.isFinite', [1], [Infinity], [NaN], ['1'], [null], [U]);
add('number.isEven', [2], [3], [-4], [2.5], ['4'], [NaN], [null], [U], [[]], [Infinity]);
add('number.isOdd', [3], [2], [-3], [2.5], ['3'], [NaN], [null], [U], [Infinity]);
add('number.isInteger', [1], [1.5], [2 ** 60], ['1'], [Infinity], [-0], [NaN]);
add('number.isNaN', [NaN], ['NaN'], [U], [1], [0 / 0]);
add('number.parseFloat', ['3.14abc'], ['  -1.5e3x'], ['.5'], ['abc'], [''], ['Infinityx'], [U], [null], [[1.5]], ['1e'], ['0x10'], [' \n42']);
add('number.parseInt', ['42px'], ['0x1F'], ['0x1F', 16], ['ff', 16], ['101', 2], ['z', 36], ['12', 1], ['12', 37], ['-7.9'], [''], [U], [null], ['  +5'], [1e21], [0.0000005], ['9007199254740993']);
const fmt = [[123.456, 2], [0.5, 0], [1.5, 0], [2.5, 0], [1.005, 2], [1.45, 1], [-1.5, 0], [-0.0001, 2], [1e21, 2], [0, 3], [NaN, 2], [123.456, U], [0.000001234, 2], [99.99, 1], [5e-7, 4], [-0, 1], [123456789, 3], [1, 101], ['5', 1], [U, 1]];
add('number.toFixed', ...fmt);
add('number.toExponential', ...fmt, [0, U], [123456, U], [9.95, 1]);
add('number.toPrecision', ...fmt.filter((x) => x[1] !== 0), [0.00001234, 2], [123456, 2], [1e-7, 3], [999.99, 3], [Infinity, 2], [0, 1]);
for (const fn of ['gte', 'lte', 'gt', 'lt']) add('number.' + fn, [1, 2], [2, 2], ['10', '9'], [10, '9'], [NaN, 1], [null, 0], [U, 0], ['a', 'b']);
add('number.max', [1, 5, 3], [], ['7', 2]);
add('number.min', [1, 5, 3], [], [NaN, 2]);
add('number.pow', [3, 2], ['2', 8], [U, 2]);
add('number.round', [2.5], [-2.5], ['1.5'], [NaN]);
add('number.add', [1, 2], [[1, 2], [3]], ['1', 2]);
add('number.subtract', [5, 3], ['7']);
add('number.multiply', [5, 3], [[2, 2], 2]);
add('number.divide', [9, 3], [9, 0], [[9, 3], 3]);

const O = { b: 1, a: [1, 2], c: { d: null } };
add('object.get', [O, 'b'], [O, 'x'], [null, 'a'], [U, 'a'], [[5, 6], 1], ['abc', 'length'], [O, 'c']);
add('object.set', [{ a: 1 }, 'b', 2], [null, 'a', 1], [U, 'a', [1]], [[1, 2], 3, 'x'], [{ a: 1 }, 'a', U], ['abc', 'x', 1], [0, 'a', 1], [5, 'a', 1]);
add('object.create', ['a', 1, 'b', 2], [], ['a'], [1, 'x', null, 'y'], ['a', 1, 'a', 2]);
for (const fn of ['keys', 'values', 'entries', 'getOwnPropertyNames']) {
  add('object.' + fn, [O], [{}], [[7, 8]], ['hi'], [''], [null], [U], [5], [{ 10: 'x', 2: 'y', b: 'z', a: 'w' }]);
}
add('object.fromEntries', [[['a', 1], ['b', 2]]], [[]], [[['a', 1], ['a', 2]]], [[[1, 'x']]], [null], [[5]]);
add('object.assign', [{ a: 1 }, { b: 2 }, { a: 3 }], [null, { a: 1 }], [{}, null, U, 'xy'], [{ a: 1 }]);
add('object.getOwnPropertySymbols', [O], [null]);
add('object.getOwnPropertyDescriptor', [O, 'b'], [O, 'zz'], [[1], 'length'], [[1], 0], [null, 'a']);
add('object.defineProperty', [{}, 'a', { value: 1 }], [{}, 'a', { value: 1, enumerable: true }], [{ a: 1 }, 'a', { value: 2 }], [null, 'a', { value: 1 }], [{}, 'a', 5]);
add('object.defineProperties', [{}, { a: { value: 1 }, b: { value: 2, enumerable: true } }], [{ a: 1 }, { a: { value: 3 } }]);
add('object.freeze', [{ a: 1 }], [5], [[1]]);
add('object.isFrozen', [{ a: 1 }], [5], [{}], ['s'], [null]);
add('object.seal', [{ a: 1 }], ['x']);
add('object.isSealed', [{ a: 1 }], [5], [U]);
add('object.preventExtensions', [{ a: 1 }], [1]);
add('object.isExtensible', [{ a: 1 }], [5], [[1]], [null]);
add('object.hasOwnProperty', [O, 'b'], [O, 'toString'], [[1], 0], [[1], 'length'], ['ab', 1], ['ab', 5], [null, 'a'], [5, 'a']);
add('object.isPrototypeOf', [O, {}], [{}, []]);
add('object.propertyIsEnumerable', [O, 'b'], [[1], 'length'], [[1], 0], [O, 'zz']);

add('string.split', ['a,b,,c', ','], ['abc', ''], ['abc', U], ['', ','], [NOTE, ' '], ['😀x', ''], ['a1b1', 1], [U, ','], [5, ',']);
add('string.charAt', ['hello', 1], ['hello', 10], ['hello', -1], ['😀', 0], ['abc', U], ['abc', '1'], [null, 0]);
add('string.concat', ['a', 'b', 'c'], ['a', 1, true, null, U], [], [[1, 2], { a: 1 }]);
add('string.includes', ['hello', 'ell'], ['hello', 'ell', 2], ['hello', ''], ['hello', U], [[1, 2], 2], [NOTE, '日本'], [null, 'a']);
add('string.indexOf', ['hello', 'l'], ['hello', 'l', 3], ['hello', 'z'], ['hello', ''], ['hello', '', 10], [NOTE, '😀'], [[1, 2], 2], [5, '5']);
add('string.lastIndexOf', ['hello', 'l'], ['hello', 'l', 2], ['hello', 'z'], ['hello', '', 2], ['hello', 'l', NaN], [[1, 2, 1], 1]);
add('string.slice', ['hello', 1, 3], ['hello', -3], ['hello', 3, 1], ['😀ab', 1], ['hello', U, U], [5, 1]);
add('string.toLowerCase', ['HeLLo'], ['İSTANBUL'], ['ΣΑΣ'], [NOTE], [''], [null], [5]);
add('string.toUpperCase', ['hello'], ['straße'], ['ǆ'], [NOTE], [''], [U], [true]);
add('string.trim', ['  a b  '], ['\t\n x \u00a0\u2028'], ['\u0085x\u0085'], ['\ufeffx'], [''], [null]);
add('string.trimStart', ['  a  '], ['\u3000x']);
add('string.trimEnd', ['  a  '], ['x\u3000']);
add('string.padStart', ['5', 3, '0'], ['abc', 6], ['abc', 2, '*'], ['abc', 8, 'xy'], ['abc', 5, ''], ['😀', 4, '-'], [5, 3, '0']);
add('string.padEnd', ['5', 3, '0'], ['abc', 6], ['abc', 8, 'xy'], ['abc', NaN]);
add('string.replace', ['a-b-c', '-', '+'], ['abc', 'x', 'y'], ['abc', 'b', '[$&]'], ['abc', 'b', '$`|$\''], ['abc', 'b', '$$'], ['abc', 'b', '$1'], ['aaa', '', 'x'], [null, 'a', 'b']);
add('string.search', ['hello', 'l+'], ['hello', 'z'], ['abc123', '\\d'], ['😀a', 'a'], ['hello', U], ['a.b', '.'], ['x', '('], [5, '5']);
add('string.substring', ['hello', 1, 3], ['hello', 3, 1], ['hello', -2], ['hello', 2], ['hello', NaN, 2], ['hello', 1, 99]);
add('string.startsWith', ['hello', 'he'], ['hello', 'll', 2], ['hello', ''], ['hello', 'x'], ['hello', U], [null, 'a']);
add('string.endsWith', ['hello', 'lo'], ['hello', 'l', 4], ['hello', 'he', 2], ['hello', ''], ['hello', 'x']);
add('string.repeat', ['ab', 3], ['ab', 0], ['ab', -1], ['ab', Infinity], ['ab', 2.7], ['ab', '2'], [5, 2]);

for (const fn of Object.keys(F.symbol)) add('symbol.' + fn, []);
for (const fn of ['not', 'positive', 'negative', 'bitwise_not']) add('unary.' + fn, [1], [0], [-0], [''], ['x'], ['12'], [null], [U], [[]], [[5]], [{}], [NaN], [true], [2 ** 32 + 3], [D]);
add('cron.nextDelay', [5], [null], [U], [{}]);

// ---- run them and encode what JSON cannot hold
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
  const [g, f] = name.split('.');
  const fn = F[g][f];
  if (!fn) throw new Error('no oracle for ' + name);
  let result;
  try {
    result = enc(fn(...clone(args)));
  } catch (e) {
    result = { $error: String(e.message || e) };
  }
  return { fn: name, args: args.map(enc), result };
});
process.stdout.write(JSON.stringify({ generated_by: 'node ' + process.version + ', TZ=' + (process.env.TZ || ''), cases: rows }, null, 0) + '\n');
