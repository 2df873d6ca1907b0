import { conflict, type SecretBox } from "@trainyard/common";
import { type Connection, type Model, Schema, type Types } from "mongoose";
import { isDuplicateKeyError } from "./connection";

/**
 * Object-store credentials for checkpoint copies, sealed like SSH keys (AES-256-GCM, record id as
 * associated data). Only the backend and bucket are stored in clear, for listings.
 */
export interface StorageCredentialDoc {
  _id: Types.ObjectId;
  team: string;
  name: string;
  backend: string;
  bucket: string;
  sealed: string;
  createdAt: Date;
  updatedAt: Date;
}

const schema = new Schema<StorageCredentialDoc>(
  {
    team: { type: String, required: true },
    name: { type: String, required: true },
    backend: { type: String, required: true },
    bucket: { type: String, required: true },
    sealed: { type: String, required: true },
  },
  { timestamps: true },
);
schema.index({ team: 1, name: 1 }, { unique: true });

export class StorageCredentialRepo {
  private readonly model: Model<StorageCredentialDoc>;

  constructor(
    conn: Connection,
    private readonly box: SecretBox,
  ) {
    this.model =
      (conn.models.StorageCredential as Model<StorageCredentialDoc> | undefined) ??
      conn.model<StorageCredentialDoc>("StorageCredential", schema, "storage_credentials");
  }

  async create(
    team: string,
    name: string,
    meta: { backend: string; bucket: string },
    secret: unknown,
  ): Promise<StorageCredentialDoc> {
    const doc = new this.model({ team, name, backend: meta.backend, bucket: meta.bucket, sealed: "-" });
    doc.sealed = this.box.seal(JSON.stringify(secret), doc._id.toString());
    try {
      await doc.save();
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict(`storage credentials named '${name}' already exist`);
      throw err;
    }
    return doc.toObject() as unknown as StorageCredentialDoc;
  }

  async list(team: string): Promise<StorageCredentialDoc[]> {
    return this.model.find({ team }).sort({ name: 1 }).lean<StorageCredentialDoc[]>();
  }

  async byName(team: string, name: string): Promise<StorageCredentialDoc | null> {
    return this.model.findOne({ team, name }).lean<StorageCredentialDoc>();
  }

  /** The decrypted credentials (parse them with @trainyard/storage's schema). */
  open(doc: StorageCredentialDoc): unknown {
    return JSON.parse(this.box.open(doc.sealed, doc._id.toString()));
  }

  async delete(team: string, name: string): Promise<boolean> {
    return (await this.model.deleteOne({ team, name })).deletedCount > 0;
  }

  async syncIndexes(): Promise<void> {
    await this.model.syncIndexes();
  }
}
