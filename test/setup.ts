// Shared mocha setup: keep test runs free of accidental network access to Cloudflare.
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
