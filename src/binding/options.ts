import type { IntMode } from '../api/types.ts';

export interface BindingOptions {
  /** 'bigint' returns INTEGER values as exact bigints and accepts bigint parameters. Default 'number' (D1). */
  intMode?: IntMode;
}
