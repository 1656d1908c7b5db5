//! A cursor over untrusted bytes: every read is checked, nothing panics.

use super::error::{Error, Result};

pub(super) struct Reader<'a> {
    rest: &'a [u8],
    /// The error to report when the input ends early.
    short: Error,
}

impl<'a> Reader<'a> {
    pub(super) fn new(data: &'a [u8], short: Error) -> Reader<'a> {
        Reader { rest: data, short }
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(self.short.clone());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(super) fn byte(&mut self) -> Result<u8> {
        match self.rest.split_first() {
            Some((b, tail)) => {
                self.rest = tail;
                Ok(*b)
            }
            None => Err(self.short.clone()),
        }
    }

    pub(super) fn u16(&mut self) -> Result<u16> {
        let hi = self.byte()?;
        let lo = self.byte()?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    /// The next `N` bytes as an array.
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}
