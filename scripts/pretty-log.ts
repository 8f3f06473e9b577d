import type { DestinationStream } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 10: '90', 20: '90', 30: '32', 40: '33', 50: '31', 60: '35' };
const NAME_COLORS = ['36', '35', '34', '33', '32', '96', '95'];
/** pino's own fields and the ones already shown in the prefix. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'svc']);

/**
 * A pino destination for `npm start`: one readable line per entry, `12:00:01 [auth-svc] INFO  msg key=value`,
 * coloured on a terminal. Production keeps plain JSON (no destination given).
 */
export function prettyDestination(out: NodeJS.WritableStream = process.stdout): DestinationStream {
  const color = 'isTTY' in out && Boolean((out as { isTTY?: boolean }).isTTY) && !process.env.NO_COLOR;
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const nameColor = new Map<string, string>();
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const level = Number(entry.level);
      const name = typeof entry.svc === 'string' ? entry.svc : typeof entry.name === 'string' ? entry.name : 'mana';
      if (!nameColor.has(name)) nameColor.set(name, NAME_COLORS[nameColor.size % NAME_COLORS.length]);
      const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : new Date().toISOString().slice(11, 19);
      const extras = Object.entries(entry)
        .filter(([k]) => !HIDDEN.has(k))
        .map(([k, v]) => `${k}=${formatValue(v)}`)
        .join(' ');
      const text = `${paint('90', time)} ${paint(nameColor.get(name)!, `[${name}]`)} ${paint(COLORS[level] ?? '0', LEVELS[level] ?? String(level))} ${typeof entry.msg === 'string' ? entry.msg : formatValue(entry.msg ?? '')}${extras ? ` ${paint('90', extras)}` : ''}\n`;
      out.write(text);
    },
  };
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  if (v && typeof v === 'object' && 'message' in v && 'stack' in v) {
    return `${JSON.stringify(v.message)}\n${String(v.stack)}`;
  }
  return JSON.stringify(v);
}
