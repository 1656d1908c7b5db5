//! The issuer side of a card: the profile, the issuer key, the CA and the
//! security domain keys, loaded before a card is touched and shared by
//! `perso`, the line stations and the pickup counters. The command line
//! builds it from its arguments (`cli_common`); the engines take it as it
//! is.

use crate::pki::LocalCa;
use crate::scp03::keyfile::Scp03Keys;

use super::engine::Issuer;
use super::keys::IssuerKey;
use super::profile::Profile;

/// Everything the issuer side needs, loaded before the card is touched.
pub struct IssuerSide {
    pub profile: Profile,
    pub key: IssuerKey,
    pub ca: LocalCa,
    /// The security domain keys, when the profile names a security domain.
    pub scp03: Option<Scp03Keys>,
}

impl IssuerSide {
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            profile: &self.profile,
            key: &self.key,
            scp03: self.scp03.as_ref(),
            ca: &self.ca,
            signer: self.ca.document_signer(),
        }
    }
}
