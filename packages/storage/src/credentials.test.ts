import { generateKeyPairSync } from "node:crypto";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import {
  parseStorageCredentials,
  redactCredentials,
  STORAGE_REDACT_PATHS,
  type StorageCredentials,
  secretsOf,
  storageCredentialsSchema,
} from "./credentials";
import { isStorageError, makeStorageError, scrubSecrets } from "./errors";
import { createObjectStore } from "./store";

const S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETs3";
const AZ_KEY = "c2VjcmV0LWF6dXJlLWFjY291bnQta2V5LXZhbHVlLTEyMzQ1Njc4OQ==";
const AZ_CS = `DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=${AZ_KEY};EndpointSuffix=core.windows.net`;
const PEM = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const PEM_BODY = PEM.split("\n")[1]!;

const s3: StorageCredentials = {
  backend: "s3",
  bucket: "ckpts",
  endpoint: "http://127.0.0.1:9000",
  accessKeyId: "AKIAEXAMPLE",
  secretAccessKey: S3_SECRET,
};
const azure: StorageCredentials = { backend: "azure", container: "ckpts", connectionString: AZ_CS };
const gcs: StorageCredentials = {
  backend: "gcs",
  bucket: "ckpts",
  projectId: "p",
  credentials: { client_email: "sa@p.iam.gserviceaccount.com", private_key: PEM },
};
const ALL_SECRETS = [S3_SECRET, AZ_KEY, AZ_CS, PEM, PEM_BODY];

function problems(input: unknown): string {
  try {
    parseStorageCredentials(input);
  } catch (err) {
    expect(isStorageError(err, "InvalidArgument")).toBe(true);
    const msg = (err as Error).message;
    const everything = `${msg}\n${JSON.stringify(err)}\n${inspect(err)}`;
    for (const s of ALL_SECRETS) expect(everything).not.toContain(s);
    return msg;
  }
  throw new Error("expected the credentials to be rejected");
}

describe("storageCredentialsSchema", () => {
  it("accepts each backend's credentials", () => {
    for (const c of [s3, azure, gcs]) expect(storageCredentialsSchema.safeParse(c).success).toBe(true);
    expect(
      storageCredentialsSchema.safeParse({ backend: "azure", container: "c1x", accountName: "acct1", accountKey: AZ_KEY })
        .success,
    ).toBe(true);
    expect(
      storageCredentialsSchema.safeParse({ backend: "gcs", bucket: "b1x", apiEndpoint: "http://127.0.0.1:4443" }).success,
    ).toBe(true);
  });

  it("drops the extra fields of a pasted service-account key file", () => {
    const parsed = parseStorageCredentials({
      ...gcs,
      credentials: {
        type: "service_account",
        private_key_id: "abc",
        token_uri: "https://x",
        ...(gcs.backend === "gcs" ? gcs.credentials : {}),
      },
    });
    expect(parsed.backend === "gcs" && Object.keys(parsed.credentials ?? {})).toEqual(["client_email", "private_key"]);
  });

  it("explains each problem by field name", () => {
    expect(problems(null)).toMatch(/storage credentials must be an object/);
    expect(problems({ backend: "ftp" })).toMatch(/backend must be one of: s3, azure, gcs/);
    expect(problems({ backend: "s3", bucket: "ckpts", accessKeyId: "AKIA" })).toMatch(/secretAccessKey is required/);
    expect(problems({ ...s3, secretAccessKey: "" })).toMatch(/secretAccessKey must not be empty/);
    expect(problems({ ...s3, bucket: "Bad_Bucket" })).toMatch(/bucket: bucket name may only contain/);
    expect(problems({ ...s3, endpoint: "ftp://x" })).toMatch(/endpoint must use http or https/);
    expect(problems({ ...s3, region: "US East" })).toMatch(/region must look like us-east-1/);
    expect(problems({ ...s3, secretKey: "x" })).toMatch(/Unrecognized key: "secretKey"/);
    expect(problems({ backend: "azure", container: "ckpts" })).toMatch(/need connectionString, or accountName \+ accountKey/);
    expect(problems({ backend: "azure", container: "ckpts", accountName: "acct1" })).toMatch(/accountKey is required/);
    expect(problems({ ...azure, accountName: "acct1" })).toMatch(/not both/);
    expect(problems({ ...azure, connectionString: "AccountName=a;Foo=bar" })).toMatch(/unknown settings: Foo/);
    expect(problems({ ...azure, connectionString: "AccountName=a" })).toMatch(/no AccountKey/);
    expect(problems({ backend: "gcs", bucket: "ckpts", credentials: { client_email: "x@y" } })).toMatch(
      /credentials.private_key is required/,
    );
    expect(problems({ backend: "gcs", bucket: "ckpts", credentials: "{}" })).toMatch(/service-account key object/);
  });

  it("never echoes a secret, even one put in the wrong place or malformed", () => {
    problems({ ...s3, secretAccessKey: 42 });
    problems({ ...s3, bucket: S3_SECRET });
    problems({ ...s3, endpoint: `https://user:${S3_SECRET}@host` });
    problems({ ...s3, region: S3_SECRET });
    problems({ ...s3, accessKeyId: S3_SECRET, secretAccessKey: "" });
    problems({ ...azure, connectionString: AZ_KEY }); // the key pasted where the string goes
    problems({ ...azure, connectionString: `${AZ_CS};Bogus=${AZ_KEY}` });
    problems({ backend: "azure", container: "ckpts", accountName: AZ_KEY, accountKey: AZ_KEY });
    problems({ backend: "azure", container: "ckpts", accountName: "acct1", accountKey: `${AZ_KEY}!!` });
    problems({ ...gcs, credentials: { client_email: "sa@p", private_key: PEM.replace(PEM_BODY, PEM_BODY.slice(0, 20)) } });
    problems({ ...gcs, credentials: { client_email: PEM_BODY, private_key: PEM } });
    problems({ backend: S3_SECRET, secretAccessKey: S3_SECRET });
  });

  it("accepts a PEM key with literal \\n (as pasted through an env var)", () => {
    const flat = PEM.replace(/\n/g, "\\n");
    expect(storageCredentialsSchema.safeParse({ ...gcs, credentials: { client_email: "a@b", private_key: flat } }).success).toBe(
      true,
    );
  });
});

describe("redaction", () => {
  it("redactCredentials replaces every secret field", () => {
    for (const c of [s3, azure, gcs, { ...s3, sessionToken: "FwoGZXIvYXdzEXAMPLETOKEN" }]) {
      const red = JSON.stringify(redactCredentials(c));
      for (const s of [...ALL_SECRETS, "FwoGZXIvYXdzEXAMPLETOKEN"]) expect(red).not.toContain(s);
      expect(red).toContain("[redacted]");
    }
    expect(redactCredentials(s3)).toMatchObject({ bucket: "ckpts", accessKeyId: "AKIAEXAMPLE", secretAccessKey: "[redacted]" });
    expect(redactCredentials(gcs)).toMatchObject({
      credentials: { client_email: "sa@p.iam.gserviceaccount.com", private_key: "[redacted]" },
    });
  });

  it("secretsOf finds the key inside a connection string and the body of a PEM key", () => {
    const found = secretsOf({ a: azure, b: gcs });
    expect(found).toContain(AZ_CS);
    expect(found).toContain(AZ_KEY);
    expect(found).toContain(PEM_BODY);
  });

  it("scrubSecrets removes raw and URL-encoded forms", () => {
    const text = `sig ${S3_SECRET} and ${encodeURIComponent(S3_SECRET)} end`;
    expect(scrubSecrets(text, [S3_SECRET])).toBe("sig [redacted] and [redacted] end");
  });

  it("error messages built from backend text are scrubbed", () => {
    const err = makeStorageError(
      { backend: "azure", bucket: "c", operation: "put", key: "k", secrets: secretsOf(azure) },
      "Unauthenticated",
      `The MAC signature found in the HTTP request '${AZ_KEY}' is not the same\nRequestId:1`,
      { backendCode: "AuthenticationFailed", status: 403 },
    );
    expect(err.message).not.toContain(AZ_KEY);
    expect(err.message).toMatch(/^azure put c\/k: the storage credentials were rejected/);
    expect(err.message).not.toContain("RequestId");
  });

  it("a store never shows its credentials through JSON, toString or util.inspect", () => {
    for (const c of [s3, azure, gcs]) {
      const store = createObjectStore(c);
      const shown = [
        JSON.stringify(store),
        String(store),
        `${store}`,
        inspect(store, { depth: 10, showHidden: true }),
        inspect({ store }),
      ];
      for (const text of shown) for (const s of ALL_SECRETS) expect(text).not.toContain(s);
      expect(JSON.parse(JSON.stringify(store))).toMatchObject({ backend: c.backend, bucket: "ckpts" });
    }
  });

  it("exports pino redact paths for every secret field", () => {
    for (const f of ["secretAccessKey", "*.secretAccessKey", "connectionString", "*.accountKey", "credentials.private_key"]) {
      expect(STORAGE_REDACT_PATHS).toContain(f);
    }
  });
});
