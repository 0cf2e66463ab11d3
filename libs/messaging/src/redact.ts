// URLs in free text (error messages, log lines) can carry secrets in two places: the user
// information (`nats://user:password@host`) and, for Slack- and Discord-style webhooks, the
// path and query (`https://hooks.slack.com/services/T…/B…/x…` is the credential). These
// helpers rewrite every `scheme://…` in a text, leaving the scheme, host and port, which say
// where something went without saying how to get in.

// A scheme, `://`, the authority (up to the first `/`, `?`, `#` or whitespace), then the rest
// of the URL up to whitespace or a character that cannot appear in one unencoded.
const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#"'<>`]*)([^\s"'<>`]*)/gi;
// Punctuation that ends a sentence or closes a bracket around a URL, not part of it.
const TRAILING = /[.,;:!?)\]}]+$/;

function withoutUserinfo(authority: string): string {
  const at = authority.lastIndexOf('@');
  return at < 0 ? authority : `***@${authority.slice(at + 1)}`;
}

function splitTrailing(rest: string): [string, string] {
  const m = TRAILING.exec(rest);
  return m ? [rest.slice(0, m.index), m[0]] : [rest, ''];
}

/**
 * Replaces the user information of every URL in `text` with `***`:
 * `nats://u:p@host:4222/x` becomes `nats://***@host:4222/x`. The rest is kept.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_IN_TEXT, (_all, scheme: string, authority: string, rest: string) => {
    return `${scheme}${withoutUserinfo(authority)}${rest}`;
  });
}

/**
 * Keeps only the scheme, host and port of every URL in `text`: a path, query or fragment
 * becomes `/…` and user information `***@`, so
 * `POST https://hooks.slack.com/services/T0/B0/xyz failed` becomes
 * `POST https://hooks.slack.com/… failed`. A URL that is only an origin (or origin and `/`)
 * is left as it is; punctuation after a URL (a full stop, a closing bracket) stays.
 */
export function redactUrls(text: string): string {
  return text.replace(URL_IN_TEXT, (_all, scheme: string, authority: string, rest: string) => {
    const [path, trailing] = splitTrailing(rest);
    const kept = path === '' || path === '/' ? path : '/…';
    return `${scheme}${withoutUserinfo(authority)}${kept}${trailing}`;
  });
}
