/** Domain vocabulary shared by every module. Pure types; imports nothing. */

export const IDENTITY_KINDS = ['human', 'workload', 'agent'] as const;
export type IdentityKind = (typeof IDENTITY_KINDS)[number];

export const ACCESS_LEVELS = ['read', 'write', 'admin'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export const ENGINES = ['postgres', 'mysql'] as const;
export type EngineName = (typeof ENGINES)[number];

/** How the broker came to trust this identity. */
export type IdentitySource = 'oidc' | 'service-account' | 'workload' | 'builtin';

export interface IdentityRef {
  id: string;
  kind: IdentityKind;
  groups: string[];
}

/** Who is acting. Every audit record, credential and decision carries one. */
export interface Identity extends IdentityRef {
  source: IdentitySource;
  email?: string;
  name?: string;
  /** An agent acting for a person: the person. Policy and audit see both. */
  onBehalfOf?: IdentityRef;
  /** The issuer (OIDC `iss`) or service-account realm the identity came from. */
  issuer?: string;
}

/** A target as policy and the engines see it. Upstream secrets are not in here. */
export interface TargetInfo {
  name: string;
  engine: EngineName;
  /** Labels policy keys on; `env` always present (defaults to the target name). */
  labels: Record<string, string>;
  database: string;
}
