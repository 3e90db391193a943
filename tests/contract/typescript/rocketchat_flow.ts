// Rocket.Chat's own TypeScript client, @rocket.chat/api-client (unmodified), typed by
// @rocket.chat/rest-typings, reads an imported workspace from a live Ferry as the admin
// and as an imported plain user. `tsc --strict` against Rocket.Chat's typings checks
// that every call below takes the parameters Rocket.Chat's endpoints take; running it
// checks the answers. Then every other GET endpoint the typings offer for users,
// channels, groups, direct messages, rooms, roles, subscriptions and chat (ENDPOINTS_JSON,
// listed from the typings by rocketchat_check.sh) is called, and must answer Rocket.Chat's
// JSON body. Run by tests/contract/test_rocketchat_api_client.py:
// node rocketchat_flow.js BASE ADMIN PASSWORD MEMBER MEMBER_PASSWORD ENDPOINTS_JSON
import { RestClient } from "@rocket.chat/api-client";

declare const process: { argv: string[]; exit(code: number): never };
declare function require(name: "fs"): { readFileSync(path: string, encoding: "utf8"): string };

const [baseUrl, admin, adminPassword, member, memberPassword, endpointsJson] = process.argv.slice(2);

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`expected ${what}`);
}

async function signedIn(user: string, password: string): Promise<RestClient> {
  const client = new RestClient({ baseUrl });
  const answer = await client.post("/v1/login", { user, password });
  check(answer.status === "success", `${user} to log in`);
  client.setCredentials({ "X-User-Id": answer.data.userId, "X-Auth-Token": answer.data.authToken });
  return client;
}

// The typed reads Ferry serves, in the order a client browsing a workspace makes them.
async function typedReads(client: RestClient, asAdmin: boolean): Promise<string[]> {
  const called: string[] = [];
  const me = await client.get("/v1/me");
  called.push("me");
  const info = await client.get("/v1/users.info", { userId: me._id });
  check(info.user.username === me.username, "users.info to find the caller");
  const presence = await client.get("/v1/users.getPresence", { userId: me._id });
  check(presence.presence === "offline", "users.getPresence to answer offline");
  called.push("users.info", "users.getPresence");

  const channels = await client.get("/v1/channels.list", { count: 50, offset: 0 });
  check(channels.channels.length > 0, "channels.list to list the imported channels");
  const channel = channels.channels[0];
  const channelInfo = await client.get("/v1/channels.info", { roomId: channel._id });
  check(channelInfo.channel._id === channel._id, "channels.info");
  await client.get("/v1/channels.history", { roomId: channel._id, count: 20 });
  await client.get("/v1/channels.members", { roomId: channel._id });
  await client.get("/v1/channels.roles", { roomId: channel._id });
  called.push("channels.list", "channels.info", "channels.history", "channels.members", "channels.roles");

  // Rocket.Chat's typings resolve groups.list's parameters to `never` (an intersection
  // of paging and filter types that cannot both hold); its own client sends none.
  const groups = await client.get("/v1/groups.list", {} as never);
  called.push("groups.list");
  for (const group of groups.groups.slice(0, 1)) {
    await client.get("/v1/groups.info", { roomId: group._id });
    const history = await client.get("/v1/groups.history", { roomId: group._id });
    await client.get("/v1/groups.members", { roomId: group._id });
    await client.get("/v1/groups.roles", { roomId: group._id });
    called.push("groups.info", "groups.history", "groups.members", "groups.roles");
    const message = history.messages[0];
    if (message !== undefined) {
      const found = await client.get("/v1/chat.getMessage", { msgId: message._id });
      check(found.message._id === message._id, "chat.getMessage to find a listed message");
      called.push("chat.getMessage");
    }
    await client.get("/v1/chat.getThreadsList", { rid: group._id });
    called.push("chat.getThreadsList");
  }

  const ims = await client.get("/v1/im.list", {});
  called.push("im.list");
  for (const im of ims.ims.slice(0, 1)) {
    const newest = await client.get("/v1/im.history", { roomId: im._id });
    const oldest = await client.get("/v1/im.history", {
      roomId: im._id,
      sort: JSON.stringify({ ts: 1 }),
    });
    const ids = (page: typeof newest) => page.messages.map((message) => message._id).join(",");
    check(
      oldest.messages.length > 1 && ids(oldest) === ids({ messages: [...newest.messages].reverse() }),
      "im.history with Rocket.Chat's sort on ts to list oldest first",
    );
    await client.get("/v1/im.members", { roomId: im._id });
    called.push("im.history", "im.members");
  }

  const rooms = await client.get("/v1/rooms.get", { updatedSince: "2000-01-01T00:00:00.000Z" });
  check(Array.isArray(rooms.update), "rooms.get to list the caller's rooms");
  await client.get("/v1/rooms.info", { roomId: channel._id });
  const subscriptions = await client.get("/v1/subscriptions.get", {});
  check(Array.isArray(subscriptions.update), "subscriptions.get");
  await client.get("/v1/roles.list");
  called.push("rooms.get", "rooms.info", "subscriptions.get", "roles.list");

  if (asAdmin) {
    const users = await client.get("/v1/users.list", {});
    check(users.users.length > 1, "users.list to list the imported users");
    await client.get("/v1/groups.listAll", {} as never);
    await client.get("/v1/im.list.everyone", { query: "{}" });
    await client.get("/v1/roles.getUsersInRole", { role: "admin" });
    called.push("users.list", "groups.listAll", "im.list.everyone", "roles.getUsersInRole");
  }
  return called;
}

// Every other GET the typings offer: Rocket.Chat's JSON body, never anything else.
async function untypedReads(client: RestClient, typed: Set<string>): Promise<number> {
  const endpoints: string[] = JSON.parse(require("fs").readFileSync(endpointsJson, "utf8"));
  let answered = 0;
  for (const endpoint of endpoints) {
    if (typed.has(endpoint.replace("/v1/", ""))) continue;
    // The client rejects with the Response itself when the status is not a success.
    const response = await client.send(endpoint, "GET").catch((failed: unknown) => {
      if (failed instanceof Response) return failed;
      throw failed;
    });
    const body: unknown = await response.json();
    check(
      typeof body === "object" && body !== null && typeof (body as { success?: unknown }).success === "boolean",
      `${endpoint} to answer Rocket.Chat's JSON body, got ${response.status}`,
    );
    check(response.ok === (body as { success: boolean }).success, `${endpoint}'s status to match its body`);
    answered++;
  }
  return answered;
}

async function main(): Promise<void> {
  const adminClient = await signedIn(admin, adminPassword);
  const memberClient = await signedIn(member, memberPassword);
  const asAdmin = await typedReads(adminClient, true);
  const asMember = await typedReads(memberClient, false);
  const typed = new Set([...asAdmin, ...asMember]);
  const others = (await untypedReads(adminClient, typed)) + (await untypedReads(memberClient, typed));
  console.log(`@rocket.chat/api-client: ${asAdmin.length} typed reads as admin, ${asMember.length} as a member, ${others} other calls answered`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
