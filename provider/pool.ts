/** Runs `fn` over `items` with at most `limit` calls in flight, in order of the items; resolves when all are done. */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
        for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
