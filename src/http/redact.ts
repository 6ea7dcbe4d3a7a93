/**
 * What `smhfs serve --log` may write: request lines and errors with every secret taken out —
 * SMH access tokens (`access_token=`, `Authorization: Bearer`), the library secret
 * (`library_secret=`), BOS signatures (`authorization=` of presigned URLs, `bce-auth-v1/…`) and
 * temporary-credential tokens. Headers are never logged. Used by the server's log serializers,
 * which every log line (Fastify's request log and ours) goes through.
 */
import type { FastifyRequest } from 'fastify';

const SECRET_PARAMS = /((?:^|[?&;\s"'])(?:access_token|library_secret|authorization|x-bce-security-token)=)([^&\s"'#]*)/gi;
const BEARER = /(Bearer\s+)\S+/gi;
const BCE_AUTH = /bce-auth-v1\/[^\s"'&]*/gi;

export const REDACTED = '[REDACTED]';

/** `text` with every secret value replaced by [REDACTED]. */
export function redactText(text: string): string {
  return text.replace(SECRET_PARAMS, `$1${REDACTED}`).replace(BEARER, `$1${REDACTED}`).replace(BCE_AUTH, `bce-auth-v1/${REDACTED}`);
}

/** Pino serializers for Fastify's logger: request lines and errors, redacted. */
export const logSerializers = {
  req(req: FastifyRequest) {
    return { method: req.method, url: redactText(req.url), remoteAddress: req.ip };
  },
  err(err: Error & { code?: string }) {
    return {
      type: err.name,
      message: redactText(err.message ?? ''),
      ...(err.code ? { code: err.code } : {}),
      stack: redactText(err.stack ?? ''),
    };
  },
};
