// sign.js signs a Discord interaction as Discord does, with Node's own
// Ed25519 (crypto.sign with a null algorithm), independently of the Go
// code under test. It reads {"timestamp": "...", "body": "..."} on stdin,
// makes a fresh key pair, signs timestamp + body, and prints the public
// key (the 32 raw bytes, hex, as the Developer Portal shows it) and the
// signature (hex, as X-Signature-Ed25519 carries it).
"use strict";
const crypto = require("crypto");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
  const data = Buffer.concat([Buffer.from(req.timestamp, "utf8"), Buffer.from(req.body, "utf8")]);
  const signature = crypto.sign(null, data, privateKey);
  if (!crypto.verify(null, data, publicKey, signature)) {
    throw new Error("node cannot verify its own signature");
  }
  // The JWK's x is the raw public key, base64url.
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url");
  process.stdout.write(JSON.stringify({ public_key: raw.toString("hex"), signature: signature.toString("hex") }));
});
