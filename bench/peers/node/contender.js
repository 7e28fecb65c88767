'use strict';
// proper-lockfile contender for the peer benchmark driver (go run ./bench/peers).
// The driver runs it as a separate process; every time is CLOCK_MONOTONIC in
// nanoseconds (process.hrtime.bigint(), which libuv reads from CLOCK_MONOTONIC on
// Linux), the same clock as the Go contenders, so the driver can merge the logs.
//
//   node contender.js contend PATH START_NS END_NS HOLD_MS   one line per hold: "want got release"
//   node contender.js cycle PATH SECONDS                      uncontended: "ops total_ns"
//   node contender.js hold PATH                               prints "held NS", then holds until killed
//   node contender.js wait PATH                               prints "waiting", then "got NS" once it holds
//   node contender.js step PATH                               stdin: acquire | release | quit, answers "ok"
//
// Options: proper-lockfile's documented defaults except
//   stale: 5000     the README's minimum stale threshold (default 10000): the
//                   takeover time after a crash is this threshold plus a poll;
//   update: default (stale/2 = 2500 ms mtime refresh);
//   realpath: false the file itself need not exist;
//   retries: {retries: 5, factor: 2, minTimeout: 1, maxTimeout: 16, forever: true}
//                   a waiter polls after 1, 2, 4, 8, 16 ms and again from 1 ms,
//                   forever (the default, 0 retries, does not wait at all).
const lockfile = require('proper-lockfile');
const readline = require('readline');

const opts = {
  stale: 5000,
  realpath: false,
  retries: { retries: 5, factor: 2, minTimeout: 1, maxTimeout: 16, forever: true },
  onCompromised: (err) => { console.error('compromised: ' + err.message); process.exit(3); },
};

const now = () => process.hrtime.bigint();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function untilNs(t) {
  for (;;) {
    const left = Number(t - now()) / 1e6;
    if (left <= 0) return;
    await sleep(Math.max(1, Math.min(left, 50)));
  }
}

async function contend(path, start, end, holdMs) {
  await untilNs(start);
  const out = [];
  while (now() < end) {
    const want = now();
    const release = await lockfile.lock(path, opts);
    const got = now();
    await sleep(holdMs);
    const rel = now();
    await release();
    out.push(`${want} ${got} ${rel}`);
  }
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
}

async function cycle(path, seconds) {
  const fast = { ...opts, retries: 0 };
  const begin = now();
  const end = begin + BigInt(Math.round(seconds * 1e9));
  let ops = 0;
  while (now() < end) {
    const release = await lockfile.lock(path, fast);
    await release();
    ops++;
  }
  process.stdout.write(`${ops} ${now() - begin}\n`);
}

async function hold(path) {
  await lockfile.lock(path, opts);
  process.stdout.write(`held ${now()}\n`);
  setInterval(() => {}, 1 << 30);
}

async function wait(path) {
  process.stdout.write('waiting\n');
  const release = await lockfile.lock(path, opts);
  process.stdout.write(`got ${now()}\n`);
  await release();
}

async function step(path) {
  const rl = readline.createInterface({ input: process.stdin });
  let release = null;
  for await (const line of rl) {
    const cmd = line.trim();
    if (cmd === 'acquire') {
      release = await lockfile.lock(path, { ...opts, retries: 0 });
    } else if (cmd === 'release') {
      await release();
      release = null;
    } else if (cmd === 'quit') {
      break;
    } else {
      throw new Error('unknown step ' + cmd);
    }
    process.stdout.write('ok\n');
  }
  process.exit(0);
}

async function main() {
  const [mode, path, ...rest] = process.argv.slice(2);
  switch (mode) {
    case 'contend': return contend(path, BigInt(rest[0]), BigInt(rest[1]), Number(rest[2]));
    case 'cycle': return cycle(path, Number(rest[0]));
    case 'hold': return hold(path);
    case 'wait': return wait(path);
    case 'step': return step(path);
    default: throw new Error('unknown mode ' + mode);
  }
}

main().catch((err) => { console.error(err && err.stack || String(err)); process.exit(1); });
