//! AMD SEV-SNP guest protocols (AMD GHCB specification #56421 and SEV-SNP
//! firmware ABI #56860).
