// Reads a JSON array of {payload, secret} from stdin and prints a JSON array of
// tokens signed exactly as Kustomer's docs show: jwt.sign(payload, secret, {header}).
const jwt = require("jsonwebtoken");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const tokens = cases.map(({ payload, secret }) =>
    jwt.sign(payload, secret, { header: { alg: "HS256", typ: "JWT" } })
  );
  process.stdout.write(JSON.stringify(tokens));
});
