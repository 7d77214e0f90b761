-- sourcing-kit redirect table: old image path -> Cloudflare Images delivery URL.
-- Applied idempotently (IF NOT EXISTS) by RedirectRows and by the tests, from this one file.
CREATE TABLE IF NOT EXISTS redirects (
  path TEXT PRIMARY KEY NOT NULL,   -- normalised key (provider/redirect/paths.ts)
  location TEXT NOT NULL,           -- absolute delivery URL, the 301 target
  image_id TEXT,                    -- custom image ID, for webhooks (image.updated / image.deleted)
  shard TEXT NOT NULL,              -- owning RedirectRows shard: a shard only deletes rows it still owns
  updated_at INTEGER NOT NULL       -- unix seconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS redirects_image_id ON redirects (image_id);
CREATE INDEX IF NOT EXISTS redirects_shard ON redirects (shard);  -- refresh reads a shard's rows
-- Seen webhook signatures, kept until they could no longer pass the timestamp check (replay protection).
CREATE TABLE IF NOT EXISTS webhook_events (
  id TEXT PRIMARY KEY NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_events_expires_at ON webhook_events (expires_at);
-- Per-image high-water mark: the newest webhook timestamp applied to an image. An older (or same-second) event for
-- the image answers 409 and changes nothing, so a late older image.updated cannot revert a newer one.
CREATE TABLE IF NOT EXISTS webhook_image_marks (
  image_id TEXT PRIMARY KEY NOT NULL,
  ts INTEGER NOT NULL               -- x-sourcing-kit-timestamp (unix seconds) of the newest accepted event
) WITHOUT ROWID;
-- Per-image lease while a webhook delivery works on the image: a second delivery for the same image answers 503 with
-- Retry-After instead of interleaving its DELETE and upload with the first one's. It expires by itself (expires_at),
-- so a Worker invocation that dies holding it blocks the image for at most the lease time.
CREATE TABLE IF NOT EXISTS webhook_image_leases (
  image_id TEXT PRIMARY KEY NOT NULL,
  holder TEXT NOT NULL,             -- the delivery's signature
  expires_at INTEGER NOT NULL       -- unix seconds
) WITHOUT ROWID;
