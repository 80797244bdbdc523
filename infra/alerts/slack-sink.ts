/**
 * The Slack sink: one message per notification, POSTed to a Slack incoming webhook
 * (https://api.slack.com/messaging/webhooks), which answers 200 with the body `ok` (any 2xx is
 * success; an error answer such as 404 `channel_not_found` is not retried).
 *
 * The message is `{ "text", "blocks" }`. `text` is the one-line fallback shown in notifications:
 *
 *   :rotating_light: PAGE — slo_breached on EndSong (high): <summary>
 *   :ticket: TICKET — dead_letter_growth on PageView (low): <summary>
 *   :white_check_mark: RESOLVED — slo_breached on EndSong (high): <summary>
 *
 * (a re-notification adds ` — still firing` to the title). `blocks` uses documented Block Kit
 * blocks only:
 *   1. `header`: the title as plain text (≤ 150 characters);
 *   2. `section`: the summary and the rule's description in mrkdwn (≤ 3,000 characters);
 *   3. `section` with `fields`: the alert's details, one field per figure (≤ 10 fields of
 *      ≤ 2,000 characters each; left out when there are none);
 *   4. `context`: when the alert opened (and resolved), the route, the alert id and dedup key.
 * Text over a limit is cut and ends with `…`; `&`, `<` and `>` are escaped in mrkdwn text.
 */
import { ALERT_RULES, type AlertNotification, type AlertSink } from '../../core/ports/alert-sink.js';
import { type HttpSinkOptions, httpSink, truncate } from './http-post.js';

const HEADER_MAX = 150;
const SECTION_MAX = 3000;
const FIELD_MAX = 2000;
const FIELDS_MAX = 10;
const CONTEXT_MAX = 2000;
const TEXT_MAX = 3000;

interface TextObject {
  readonly type: 'plain_text' | 'mrkdwn';
  readonly text: string;
  readonly emoji?: boolean;
}

export type SlackBlock =
  | { readonly type: 'header'; readonly text: TextObject }
  | { readonly type: 'section'; readonly text: TextObject }
  | { readonly type: 'section'; readonly fields: readonly TextObject[] }
  | { readonly type: 'context'; readonly elements: readonly TextObject[] };

export interface SlackBody {
  readonly text: string;
  readonly blocks: readonly SlackBlock[];
}

/** The title: `:rotating_light: PAGE — slo_breached on EndSong (high)` and the like. */
export function slackTitle(n: AlertNotification): string {
  const a = n.alert;
  const label =
    n.event === 'resolve'
      ? ':white_check_mark: RESOLVED'
      : n.route === 'page'
        ? ':rotating_light: PAGE'
        : ':ticket: TICKET';
  return `${label} — ${a.rule} on ${a.type} (${a.tier})${n.event === 'renotify' ? ' — still firing' : ''}`;
}

export function slackBody(n: AlertNotification): SlackBody {
  const a = n.alert;
  const title = slackTitle(n);
  const summary = oneLine(a.summary);
  const rule = `_${escapeMrkdwn(ALERT_RULES[a.rule])}_`;
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(title, HEADER_MAX), emoji: true } },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: `${mrkdwn(summary, SECTION_MAX - rule.length - 1)}\n${rule}` },
    },
  ];
  const fields = detailFields(a.details);
  if (fields.length > 0) blocks.push({ type: 'section', fields });
  const when = `opened ${iso(a.openedAt)}${a.resolvedAt !== null ? ` · resolved ${iso(a.resolvedAt)}` : ''}`;
  blocks.push({
    type: 'context',
    elements: [
      { type: 'mrkdwn', text: when },
      { type: 'mrkdwn', text: mrkdwn(`${n.route} · alert ${a.id} · ${a.dedupKey}`, CONTEXT_MAX) },
    ],
  });
  return { text: mrkdwn(`${title}: ${summary}`, TEXT_MAX), blocks };
}

export function slackSink(o: HttpSinkOptions): AlertSink {
  return httpSink('slack', o, slackBody);
}

function detailFields(details: AlertNotification['alert']['details']): TextObject[] {
  const entries = Object.entries(details);
  const shown = entries.length > FIELDS_MAX ? entries.slice(0, FIELDS_MAX - 1) : entries;
  const fields: TextObject[] = shown.map(([name, value]) => {
    const label = `*${mrkdwn(oneLine(name), 200)}*`;
    return { type: 'mrkdwn', text: `${label}\n${mrkdwn(String(value), FIELD_MAX - label.length - 1)}` };
  });
  if (shown.length < entries.length) {
    fields.push({ type: 'mrkdwn', text: `*…*\n${entries.length - shown.length} more in the alert's details` });
  }
  return fields;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const oneLine = (text: string): string => text.replace(/\s*[\r\n]+\s*/g, ' ').trim();

/** Slack's mrkdwn needs `&`, `<` and `>` escaped. */
function escapeMrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** `text` escaped for mrkdwn and cut to `max` characters without splitting an escape. */
function mrkdwn(text: string, max: number): string {
  const escaped = escapeMrkdwn(text);
  if (escaped.length <= max) return escaped;
  return `${truncate(escaped, max)
    .slice(0, -1)
    .replace(/&[a-z]{0,3}$/, '')}…`;
}
