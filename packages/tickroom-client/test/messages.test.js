// Game messages and hidden components against a real node running the test
// card game (TICKROOM_CARDS_URL; tests/web/test_js_package.py starts one with
// --game tests.games.cards:Cards): a hand reaches only its holder, "msg"
// goes both ways and targeted, a bad message comes back as error 4001.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TickroomClient } from "@tickroom/client";

const URL = process.env.TICKROOM_CARDS_URL;
const DEADLINE_MS = 15_000;

function until(predicate, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (predicate()) { clearInterval(poll); resolve(); }
      else if (Date.now() - started > DEADLINE_MS) { clearInterval(poll); reject(new Error(`timed out waiting for ${what}`)); }
    }, 10);
  });
}

function player(name) {
  const client = new TickroomClient({ url: URL, room: "js-cards", name });
  client.messages = [];
  client.errors = [];
  client.onMessage = (message) => client.messages.push(message);
  client.onError = (error) => client.errors.push(error.code);
  client.connect();
  return client;
}

test("a hand reaches only its holder; messages go both ways, targeted", async () => {
  assert.ok(URL, "set TICKROOM_CARDS_URL to a node running tests.games.cards:Cards");
  const ada = player("ada");
  const bob = player("bob");
  try {
    const seated = (c) => c.state === "joined" && c.entity(ada.player) && c.entity(bob.player);
    await until(() => seated(ada) && seated(bob), "both players in both worlds");
    assert.deepEqual(ada.welcome.messages.play, { slot: ["int", 0, 4] });
    assert.ok(Array.from(ada.entity(ada.player).hand).every((card) => card > 0), "ada sees her cards");
    assert.deepEqual(Array.from(bob.entity(ada.player).hand), [0, 0, 0, 0, 0], "bob sees none of them");
    assert.equal(bob.entity(ada.player).count, 5);

    assert.equal(ada.sendMessage("play", { slot: 0 }), true);
    await until(() => ada.messages.some((m) => m.kind === "drew"), "ada's private draw");
    assert.ok(bob.sendMessage("chat", { text: "gg" }));
    await until(() => ada.messages.some((m) => m.kind === "chat") && bob.messages.some((m) => m.kind === "chat"), "the chat");
    const chat = bob.messages.find((m) => m.kind === "chat");
    assert.deepEqual(chat.data, { from: bob.player, text: "gg" });
    assert.ok(!bob.messages.some((m) => m.kind === "drew"), "the draw was ada's only");

    bob.sendMessage("play", { slot: 99 });
    await until(() => bob.errors.length > 0, "the refusal");
    assert.deepEqual(bob.errors, [4001]);
  } finally {
    ada.close();
    bob.close();
  }
});
