//! Tests of the personalisation profile: issuer authentication, the card
//! life cycle register, PIN transport state, key objects, biometric
//! objects and image version 2. Driven by hex APDUs as a host sends them.
