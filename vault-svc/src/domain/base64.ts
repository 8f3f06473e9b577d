/** Canonical, padded standard base64 (what `Buffer#toString('base64')` produces) and nothing else. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes strict base64; undefined when the text is not base64 (Node's decoder would silently skip junk). */
export function decodeBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
