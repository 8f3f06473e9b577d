import { METHODS, Server, type RequestListener } from 'node:http';

/** One route an Express app answers: `GET /api/v1/auth/sessions/:id` (`ALL` for `app.all`). */
export interface MountedRoute {
  method: string;
  path: string;
}

interface Layer {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

const join = (prefix: string, path: string) => {
  const joined = `${prefix}/${path}`.replace(/\/{2,}/g, '/');
  return joined.length > 1 ? joined.replace(/\/$/, '') : joined;
};

function walk(stack: readonly Layer[], prefix: string, out: MountedRoute[]): void {
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? (layer.route.path as unknown[]) : [layer.route.path];
      for (const p of paths) {
        if (typeof p !== 'string') throw new Error(`a route under ${prefix || '/'} has a non-string path: list it by hand`);
        const methods = Object.keys(layer.route.methods).filter((m) => layer.route?.methods[m]);
        // `app.all()`: Express 5 registers every method of node:http one by one.
        if (methods.includes('_all') || METHODS.every((m) => methods.includes(m.toLowerCase())))
          out.push({ method: 'ALL', path: join(prefix, p) });
        else for (const method of methods) out.push({ method: method.toUpperCase(), path: join(prefix, p) });
      }
    } else if (Array.isArray(layer.handle?.stack)) {
      // A mounted router (Express 5 / router 2 keeps the mount path as `rawPath`).
      const mount = typeof layer.rawPath === 'string' ? layer.rawPath : '/';
      walk(layer.handle.stack, join(prefix, mount), out);
    }
  }
}

/**
 * Every route an Express 5 app answers, walked from its router stack (routers mounted in routers
 * included); plain middleware is not a route. Pass the app or a server whose request listener is one.
 */
export function expressRoutes(appOrServer: RequestListener | Server): MountedRoute[] {
  type App = { router?: { stack?: Layer[] } };
  // A server has other request listeners too (the lifecycle's drain bookkeeping): take the Express app among them.
  const candidates = appOrServer instanceof Server ? (appOrServer.listeners('request') as unknown[]) : [appOrServer];
  const router = candidates.map((l) => (l as App).router).find((r) => Array.isArray(r?.stack));
  if (!router?.stack) throw new Error('not an Express 5 app (nor a server of one)');
  const out: MountedRoute[] = [];
  walk(router.stack, '', out);
  const seen = new Set<string>();
  return out.filter((r) => {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
