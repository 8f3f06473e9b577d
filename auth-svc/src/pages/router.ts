import { Router } from 'express';
import type { AuthContext } from '../context';

export function hostedPages(_ctx: AuthContext): Router {
  return Router();
}
