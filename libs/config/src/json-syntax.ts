// Where a JSON text stops being JSON, and what was expected there, without quoting the text.
// JSON.parse's own message quotes the input around the error ("Unexpected token '}',
// "…operator-token"}]" is not valid JSON"), which for DLQ_TOKENS or INTAKE_API_KEYS is part
// of a secret: this scanner reports a position and the expected form only.

class SyntaxStop {
  constructor(
    readonly at: number,
    readonly expected: string,
  ) {}
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const HEX4 = /[0-9a-fA-F]{4}/y;

/** The first syntax error of `text` as JSON: its offset and what was expected; undefined if it is JSON. */
export function jsonSyntaxError(text: string): { at: number; expected: string } | undefined {
  let i = 0;
  const fail = (expected: string): never => {
    throw new SyntaxStop(i, expected);
  };
  const skip = () => {
    while (i < text.length && WHITESPACE.has(text[i]!)) i++;
  };
  const string = () => {
    i++; // the opening quote
    for (;;) {
      if (i >= text.length) fail('a closing double quote');
      const c = text[i]!;
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        i++;
        if (text[i] === 'u') {
          i++;
          HEX4.lastIndex = i;
          if (!HEX4.test(text)) fail('four hex digits after \\u');
          i += 4;
        } else if (i < text.length && ESCAPES.has(text[i]!)) i++;
        else fail('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)');
        continue;
      }
      if (c < ' ') fail('no control character inside a string (escape it)');
      i++;
    }
  };
  const value = (depth: number): void => {
    if (depth > 1_000) fail('less deeply nested JSON');
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      skip();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        skip();
        if (text[i] !== '"') fail('a property name in double quotes');
        string();
        skip();
        if (text[i] !== ':') fail("':' after a property name");
        i++;
        value(depth + 1);
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail("',' or '}' after a property value");
      }
    }
    if (c === '[') {
      i++;
      skip();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail("',' or ']' after an array element");
      }
    }
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      if (!NUMBER.test(text)) fail('a number');
      i = NUMBER.lastIndex;
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    fail('a value (an object, array, string, number, true, false or null)');
  };
  try {
    value(0);
    skip();
    if (i < text.length) fail('nothing after the JSON value');
    return undefined;
  } catch (err) {
    if (err instanceof SyntaxStop) return { at: err.at, expected: err.expected };
    throw err;
  }
}

/** "at position 12 (line 1, column 13)" or "at the end (position 40)", from an offset in `text`. */
export function describePosition(text: string, at: number): string {
  if (at >= text.length) return `at the end (position ${at})`;
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const column = at - before.lastIndexOf('\n');
  return `at position ${at} (line ${line}, column ${column})`;
}
