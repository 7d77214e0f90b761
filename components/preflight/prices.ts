/**
 * Cloudflare Images' published prices, in one place with the day they were read. Paid plans bill images stored and
 * images delivered per month; transformations of images stored in Images are included.
 * Source: https://developers.cloudflare.com/images/pricing/ (the "Images Stored" and "Images Delivered" rows).
 */
export const IMAGES_PRICES = {
    asOf: "2026-12-03",
    source: "https://developers.cloudflare.com/images/pricing/",
    currency: "USD",
    storedPer100kPerMonth: 5,
    deliveredPer100kPerMonth: 1,
} as const;

/** Pure: the monthly cost of storing `images` images, in dollars rounded to cents. */
export function monthlyStorageUsd(images: number): number {
    return Math.round((Math.max(0, images) / 100_000) * IMAGES_PRICES.storedPer100kPerMonth * 100) / 100;
}

/** Pure: "$4.80". */
export function usd(amount: number): string {
    return `$${amount.toFixed(2)}`;
}
