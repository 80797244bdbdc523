/** Calls a JSON API of Hourglass with an optional bearer token; the status and the parsed answer. */
export async function callJson(
  url: string,
  method: string,
  token: string | null,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes, each pinned by the assertions
): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(url, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: as above
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}
