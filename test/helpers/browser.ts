// A real browser for the console's tests: Debian's chromium, driven by playwright-core. Where no
// chromium is installed the browser tests are skipped, with the reason — unless
// DIONE_REQUIRE_BROWSER=1 (set by .ci/run, which installs it), where its absence fails them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { root } from './paths.ts';

// What the functions run inside the page use (this project's TypeScript has no DOM library).
declare const document: any, scrollX: number, scrollY: number, Image: any, OffscreenCanvas: any;

export const chromiumPath = process.env.DIONE_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can (or must). */
export function browserSkipReason(): string | undefined {
  if (existsSync(chromiumPath) || process.env.DIONE_REQUIRE_BROWSER === '1') return undefined;
  return `no chromium at ${chromiumPath} (apt-get install chromium, or set DIONE_CHROMIUM)`;
}

/** Bundles the console from its sources, so the browser sees what the tree holds now. */
export function buildConsole(): void {
  execFileSync(process.execPath, [path.join(root, 'scripts/build-console.mjs')], { stdio: 'inherit' });
}

export async function launchBrowser(): Promise<Browser> {
  // Playwright gives the browser a fresh profile of its own; the flags keep chromium off the
  // network it cannot reach here (it would retry, slowly).
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    headless: true,
  });
}

/** Where screenshots go: DIONE_SCREENSHOTS if set (kept), else a temp folder removed with the test. */
export function screenshotDirectory(): { dir: string; keep: boolean } {
  if (process.env.DIONE_SCREENSHOTS) {
    mkdirSync(process.env.DIONE_SCREENSHOTS, { recursive: true });
    return { dir: process.env.DIONE_SCREENSHOTS, keep: true };
  }
  return { dir: mkdtempSync(path.join(tmpdir(), 'dione-screens-')), keep: false };
}

/**
 * Takes a screenshot of the page and checks, in the picture itself, that each element is drawn:
 * inside the picture, and its area holds more than one colour (text or a border, not a blank).
 * Answers the file written.
 */
export async function screenshotShowing(page: Page, dir: string, name: string, elements: Locator[]): Promise<string> {
  for (const element of elements) await element.waitFor({ state: 'visible', timeout: 10_000 });
  const png = await page.screenshot({ fullPage: true });
  const file = path.join(dir, `${name}.png`);
  writeFileSync(file, png);
  const boxes = [];
  for (const element of elements) {
    await element.scrollIntoViewIfNeeded();
    const box = await element.boundingBox();
    if (!box) throw new Error(`${name}: ${element} has no box`);
    const scroll = await page.evaluate(() => ({ x: scrollX, y: scrollY }));
    boxes.push({ x: box.x + scroll.x, y: box.y + scroll.y, width: box.width, height: box.height, what: String(element) });
  }
  const verdicts = await page.evaluate(
    async ({ data, boxes }) => {
      const image = new Image();
      image.src = `data:image/png;base64,${data}`;
      await image.decode();
      const canvas = new OffscreenCanvas(image.width, image.height);
      const context = canvas.getContext('2d')!;
      context.drawImage(image, 0, 0);
      const scale = image.width / document.documentElement.scrollWidth;
      return boxes.map((b) => {
        const x = Math.floor(b.x * scale);
        const y = Math.floor(b.y * scale);
        const w = Math.max(1, Math.floor(b.width * scale));
        const h = Math.max(1, Math.floor(b.height * scale));
        if (x < 0 || y < 0 || x + w > image.width || y + h > image.height) return `${b.what} lies outside the screenshot`;
        const pixels = context.getImageData(x, y, w, h).data;
        const colours = new Set<number>();
        for (let i = 0; i < pixels.length && colours.size < 2; i += 4) colours.add((pixels[i]! << 16) | (pixels[i + 1]! << 8) | pixels[i + 2]!);
        return colours.size < 2 ? `${b.what} is blank in the screenshot` : null;
      });
    },
    { data: png.toString('base64'), boxes },
  );
  const problems = verdicts.filter(Boolean);
  if (problems.length) throw new Error(`${name}.png: ${problems.join('; ')}`);
  return file;
}
