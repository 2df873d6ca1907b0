import type { SecretBox } from "@trainyard/common";
import { Types } from "mongoose";
import type { Models } from "./models";

export interface SshSecret {
  privateKey: string;
  passphrase?: string;
}

/** SSH credentials, sealed with AES-256-GCM; the record id is bound in as associated data. */
export class CredentialRepo {
  constructor(
    private readonly m: Models,
    private readonly box: SecretBox,
  ) {}

  async createSsh(team: string, secret: SshSecret): Promise<Types.ObjectId> {
    const _id = new Types.ObjectId();
    const aad = _id.toString();
    await this.m.Credential.create({
      _id,
      team,
      kind: "ssh",
      sealedPrivateKey: this.box.seal(secret.privateKey, aad),
      ...(secret.passphrase !== undefined ? { sealedPassphrase: this.box.seal(secret.passphrase, aad) } : {}),
    });
    return _id;
  }

  async openSsh(id: Types.ObjectId): Promise<SshSecret> {
    const doc = await this.m.Credential.findById(id).lean();
    if (!doc) throw new Error(`credential ${id} not found`);
    const aad = doc._id.toString();
    return {
      privateKey: this.box.open(doc.sealedPrivateKey, aad),
      ...(doc.sealedPassphrase ? { passphrase: this.box.open(doc.sealedPassphrase, aad) } : {}),
    };
  }

  async delete(id: Types.ObjectId): Promise<void> {
    await this.m.Credential.deleteOne({ _id: id });
  }
}
