// The emulator's image records, their API shape, listing order and JSON persistence.
import { promises as fsp, readFileSync, existsSync } from "node:fs";
import * as path from "node:path";

export interface StoredImage {
  id: string;
  filename: string;
  meta: Record<string, unknown>;
  requireSignedURLs: boolean;
  uploaded: string;
  creator?: string;
  bytes: Buffer;
  contentType: string;
  sourceUrl?: string;
}

/** The Image model as the API returns it. */
export function imageJson(img: StoredImage, accountHash: string, variants: string[]): Record<string, unknown> {
  return {
    id: img.id,
    filename: img.filename,
    meta: img.meta,
    requireSignedURLs: img.requireSignedURLs,
    uploaded: img.uploaded,
    variants: variants.map((v) => deliveryUrl(accountHash, img.id, v)),
    creator: img.creator ?? null,
  };
}

export function deliveryUrl(accountHash: string, id: string, variant: string): string {
  return `https://imagedelivery.net/${accountHash}/${id}/${variant}`;
}

/** Upload time order, ties broken by id so pages are stable. */
export function compareImages(a: StoredImage, b: StoredImage): number {
  if (a.uploaded !== b.uploaded) return a.uploaded < b.uploaded ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function sortedImages(images: Iterable<StoredImage>, order: "asc" | "desc"): StoredImage[] {
  const list = [...images].sort(compareImages);
  return order === "desc" ? list.reverse() : list;
}

/** Upload timestamps strictly increase within one emulator so "newest first" is well defined. */
export class UploadClock {
  private last = 0;
  next(now = Date.now()): string {
    this.last = Math.max(now, this.last + 1);
    return new Date(this.last).toISOString();
  }
}

interface PersistedImage extends Omit<StoredImage, "bytes"> {
  bytesBase64: string;
}

export function loadImages(file: string): Map<string, StoredImage> {
  const images = new Map<string, StoredImage>();
  if (!existsSync(file)) return images;
  let parsed: { images?: PersistedImage[] };
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`persistPath ${file}: not a JSON emulator store (${(err as Error).message}); delete it or choose another --persist file`);
  }
  for (const p of parsed.images ?? []) {
    const { bytesBase64, ...rest } = p;
    images.set(p.id, { ...rest, bytes: Buffer.from(bytesBase64, "base64") });
  }
  return images;
}

/** Saves the store to a JSON file after changes, debounced, atomically (write a temp file, then rename). */
export class StoreSaver {
  private timer?: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly images: Map<string, StoredImage>,
    private readonly debounceMs = 500,
  ) {}

  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.save();
    }, this.debounceMs);
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.save();
  }

  private save(): Promise<void> {
    this.writing = this.writing.then(() => this.write()).catch((err) => {
      process.stderr.write(`emulator: could not save ${this.file}: ${(err as Error).message}\n`);
    });
    return this.writing;
  }

  private async write(): Promise<void> {
    const images: PersistedImage[] = [...this.images.values()].map(({ bytes, ...rest }) => ({ ...rest, bytesBase64: bytes.toString("base64") }));
    const tmp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.${process.pid}.tmp`);
    await fsp.mkdir(path.dirname(this.file), { recursive: true });
    await fsp.writeFile(tmp, JSON.stringify({ version: 1, images }));
    await fsp.rename(tmp, this.file);
  }
}
