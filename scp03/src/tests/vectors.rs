//! Published SCP03 sessions, reproduced byte for byte by the host side and,
//! in the other direction, by the card side.
//!
//! Sources (each vector below names its own):
//! * osmocom/pysim, `tests/unittests/test_globalplatform.py`: nine S8 sessions
//!   with a sysmoEUICC (AES-128/192/256 × levels 11, 03, 33), i = '70',
//!   pseudo-random card challenges. The card side reproduces the challenges
//!   with the ISD-R AID A0000005591010FFFFFFFF8900000100 (GSMA SGP.22); that
//!   AID is not stated in the test file, it is inferred from the commands
//!   (ES10 GET EID to the ISD-R) and confirmed by the match.
//! * Samsung/OpenSCP-Java, `src/test/java/com/samsung/openscp/testdata/`
//!   (`InputTestData.java`, `OutputTestData.java`,
//!   `SmartCardScp03Aes{128,192,256}S{8,16}ModeEmulation.java`): six sessions,
//!   S8 and S16, AES-128/192/256, level 33. Their card is an emulation whose
//!   challenge does not depend on the key, so the card side here replays
//!   them with a supplied (random-mode) challenge.
//! * suma12/asterix, `asterix/SCP03.py` (class `Test128`, "designed from SCP03
//!   crypto calculation by J.M. Valade"): AES-128 S8 with pseudo-random
//!   challenge, with published session keys, cryptograms and MAC chaining value.
//! * martinpaljak/GlobalPlatformPro: the KDF3 diversification vector is in
//!   `kdf.rs` / `keys.rs`; the KCV vectors from osmocom/pysim in `keys.rs`.
//!
//! No published vector was found for: random (i = '60') card challenges,
//! levels 01 and 13, extended-length wrapping, logical channels, PUT KEY or
//! STORE DATA bytes under SCP03. Those are covered by round trips only.

use super::*;

/// ISD-R AID (GSMA SGP.22), the security domain of the pySim sessions.
const ISD_R: &str = "A0000005591010FFFFFFFF8900000100";

struct PySimSession {
    name: &'static str,
    kvn: u8,
    key_len: usize,
    init_upd_cmd: &'static str,
    init_upd_rsp: &'static str,
    ext_auth_cmd: &'static str,
    get_eid_cmd: &'static str,
    get_eid_rsp: &'static str,
    cases: [&'static str; 4],
}

// osmocom/pysim tests/unittests/test_globalplatform.py, class SCP03_Test and
// its subclasses SCP03_Test_AES{128,192,256}_{11,03,33}.
const PYSIM_GET_EID_PLAIN: &str = "80E2910006BF3E035C015A00";
const PYSIM_GET_EID_RSP_PLAIN: &str = "bf3e125a1089882119900000000000000000000005";
const PYSIM_CASES_PLAIN: [&str; 4] = [
    "80F22002",
    "80ca006600",
    "80F220020a4f0212345c054f9f70c5",
    "80f28002024f0000",
];

const PYSIM: [PySimSession; 9] = [
    PySimSession {
        name: "SCP03_Test_AES128_11",
        kvn: 0x30,
        key_len: 16,
        init_upd_cmd: "8050300008b13e5f938fc108c400",
        init_upd_rsp: "000000000000000000003003703eb51047495b249f66c484c1d2ef1948000002",
        ext_auth_cmd: "84821100107d5f5826a993ebc89eea24957fa0b3ce",
        get_eid_cmd: "84e291000ebf3e035c015a558d036518a2829700",
        get_eid_rsp: "bf3e125a1089882119900000000000000000000005971be68992dbbdfa",
        cases: [
            "84f220020863a63f8959827fb2",
            "84ca006608a0c6a4a74166f7ce00",
            "84f22002124f0212345c054f9f70c52249b50272656536",
            "84f280020a4f00e91443f6dce6b8ed00",
        ],
    },
    PySimSession {
        name: "SCP03_Test_AES128_03",
        kvn: 0x30,
        key_len: 16,
        init_upd_cmd: "80503000088e1552d0513c60f300",
        init_upd_rsp: "0000000000000000000030037030760cd2c47c1dd395065fe5ead8a9d7000001",
        ext_auth_cmd: "8482030010fd4721a14d9b07003c451d2f8ae6bb21",
        get_eid_cmd: "84e2910018ca9c00f6713d79bc8baa642bdff51c3f6a4082d3bd9ad26c00",
        get_eid_rsp: "bf3e125a1089882119900000000000000000000005",
        cases: [
            "84f2200208c9811b11f1264cf1",
            "84ca006608e10ab60b3054798800",
            "84f22002184e2908bdb48b2315a55482e9e936ca122d6ecfae7d17416e",
            "84f28002180dd10a6b6193e5340b9e77d32d5a179cd710ac2773aefb2800",
        ],
    },
    PySimSession {
        name: "SCP03_Test_AES128_33",
        kvn: 0x30,
        key_len: 16,
        init_upd_cmd: "8050300008fdf38259a1e0de4400",
        init_upd_rsp: "000000000000000000003003703b1aca81e821f219081cdc01c26b372d000003",
        ext_auth_cmd: "84823300108c36f96bcc00724a4e13ad591d7da3f0",
        get_eid_cmd: "84e2910018267a85dfe4a98fca6fb0527e0dfecce4914e40401433c87f00",
        get_eid_rsp:
            "f3ba2b1013aa6224f5e1c138d71805c569e5439b47576260b75fc021b25097cb2e68f8a0144975b9",
        cases: [
            "84f2200208ac6a59024bed84cc",
            "84ca006608409912ad8fb7aed000",
            "84f22002185f3dafc3ac14c381536a488bf44e06d056df9d74dbd21e5a",
            "84f280021865165105be3373347d0424d4400af2ac393f569ec779389e00",
        ],
    },
    PySimSession {
        name: "SCP03_Test_AES192_11",
        kvn: 0x31,
        key_len: 24,
        init_upd_cmd: "80503100087396430b768b085b00",
        init_upd_rsp: "000000000000000000003103708cfc23522ffdbf1e5df5542cac8fd866000003",
        ext_auth_cmd: "84821100102145ed30b146f5db252fb7e624cec244",
        get_eid_cmd: "84e291000ebf3e035c015aff42cf801d14394400",
        get_eid_rsp: "bf3e125a1089882119900000000000000000000005162fbd33e04940a9",
        cases: [
            "84f22002084584e4f6784811ee",
            "84ca006608937776ebe190fa3000",
            "84f22002124f0212345c054f9f70c59a52bddf3040368c",
            "84f280020a4f009804b11411f7393d00",
        ],
    },
    PySimSession {
        name: "SCP03_Test_AES192_03",
        kvn: 0x31,
        key_len: 24,
        init_upd_cmd: "805031000869c65da8202bf19f00",
        init_upd_rsp: "00000000000000000000310370b570a67be38446717729d6dd3d2ec5b1000001",
        ext_auth_cmd: "848203001065df4f1a356a887905466516d9e5b7c1",
        get_eid_cmd: "84e2910018d2c6fb477c5d4afe4fd4d21f17eff10d3578ec1774a12a2d00",
        get_eid_rsp: "bf3e125a1089882119900000000000000000000005",
        cases: [
            "84f2200208964e188f0b1bb697",
            "84ca006608f0820035a41d3e1800",
            "84f220021806b076ed452cd1fa84f77f5c08a146aa77a9286757dea791",
            "84f2800218d06527e39222dce091fabdb8e9b898417a67a6852d3577db00",
        ],
    },
    PySimSession {
        name: "SCP03_Test_AES192_33",
        kvn: 0x31,
        key_len: 24,
        init_upd_cmd: "80503100089b3f2eef0e8c937400",
        init_upd_rsp: "00000000000000000000310370f6bb305a15bae1a68f79fb08212fbed7000002",
        ext_auth_cmd: "84823300109100bc22d58b45b86a26365ce39ff3cf",
        get_eid_cmd: "84e29100188f7f946c84f70d17994bc6e8791251bb1bb1bf02cf8de58900",
        get_eid_rsp:
            "c05176c1b6f72aae50c32cbee63b0e95998928fd4dfb2be9f27ffde8c8476f5909b4805cc4039599",
        cases: [
            "84f2200208d5d97754b6b3d2ba",
            "84ca006608516c82b8e30adbeb00",
            "84f2200218cc247f4761e6944277a4e0d6e32e44025b1e31537e2fc668",
            "84f2800218ba22b63d509bef5d093b43e5eaed03ed23144ab2d9cb51de00",
        ],
    },
    PySimSession {
        name: "SCP03_Test_AES256_11",
        kvn: 0x32,
        key_len: 32,
        init_upd_cmd: "805032000811666d57866c6f5400",
        init_upd_rsp: "0000000000000000000032037053ea8847efa7674e41498a4d66cf0dee000003",
        ext_auth_cmd: "84821100102f2ad190eff2fafc4908996d1cebd310",
        get_eid_cmd: "84e291000ebf3e035c015af4b680372542b59d00",
        get_eid_rsp: "bf3e125a10898821199000000000000000000000058012dd7f01f1c4c1",
        cases: [
            "84f2200208d618b7da68d5fe52",
            "84ca0066088f3e055db23ad5e500",
            "84f22002124f0212345c054f9f70c5b6e15cc42404915e",
            "84f280020a4f00aa124aa74afe7f7500",
        ],
    },
    PySimSession {
        name: "SCP03_Test_AES256_03",
        kvn: 0x32,
        key_len: 32,
        init_upd_cmd: "8050320008c6066990fc426e1d00",
        init_upd_rsp: "000000000000000000003203708682cd81bbd8919f2de3f2664581f118000001",
        ext_auth_cmd: "848203001077c493b632edadaf865a1e64acc07ce9",
        get_eid_cmd: "84e29100183ddaa60594963befaada3525b492ede23c2ab2c1ce3afe4400",
        get_eid_rsp: "bf3e125a1089882119900000000000000000000005",
        cases: [
            "84f2200208480ddc8e419da38d",
            "84ca0066083e9d6a6c0b2d732000",
            "84f22002183ebfef2da8b04af2a85f491f299b76973df76ff08a4031be",
            "84f2800218783fff80990f5585b1055010ea95094a26e4a8f1ef4b18e100",
        ],
    },
    PySimSession {
        name: "SCP03_Test_AES256_33",
        kvn: 0x32,
        key_len: 32,
        init_upd_cmd: "805032000897b2055fe58599fd00",
        init_upd_rsp: "00000000000000000000320370a8439a22cedf045fa9f1903b2834f26e000002",
        ext_auth_cmd: "8482330010508a0fd959d2e547c6b33154a6be2057",
        get_eid_cmd: "84e29100187a5ef717eaf1e135ae92fe54429d0e465decda65f5fe5aea00",
        get_eid_rsp:
            "ea90dbfa648a67c5eb6abc57f8530b97d0cd5647c5e8732016b55203b078dd2ace7f8bc5d1c1cd99",
        cases: [
            "84f2200208bcc5c17275545d93",
            "84ca00660804806aba9d543bb600",
            "84f2200218717222491556ec81a45f49ce48be33320024801a1c4cb0e0",
            "84f2800218561f105bccd3a1642904b251ccc1228beb80a82370a8637000",
        ],
    },
];

/// pySim's KEYSET_AES128/192/256: ENC 00 01 02 …, MAC 10 11 12 …, DEK 20 21 22 …
/// (the 192/256-bit keys repeat the 128-bit pattern).
fn pysim_keys(kvn: u8, len: usize) -> StaticKeys {
    let key = |base: u8| -> Vec<u8> { (0..len).map(|i| base + (i % 16) as u8).collect() };
    StaticKeys::new(kvn, &key(0x00), &key(0x10), &key(0x20)).unwrap()
}

fn bytes_of(cmd: &Command) -> String {
    hx(&cmd.encode().unwrap())
}

#[test]
fn pysim_sessions_host_side() {
    for s in &PYSIM {
        let init_cmd = h(s.init_upd_cmd);
        let mut host = HostSession::new(
            pysim_keys(s.kvn, s.key_len).into(),
            Mode::S8,
            &init_cmd[5..13],
        )
        .unwrap();
        assert_eq!(
            bytes_of(&host.initialize_update()),
            hx(&init_cmd),
            "{}",
            s.name
        );
        host.process_initialize_update(&Response::new(h(s.init_upd_rsp), 0x9000))
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let level = SecurityLevel::from_p1(h(s.ext_auth_cmd)[2]).unwrap();
        let ea = host.external_authenticate(level).unwrap();
        assert_eq!(bytes_of(&ea), hx(&h(s.ext_auth_cmd)), "{}", s.name);
        host.process_external_authenticate(&Response::status(0x9000))
            .unwrap();

        let get_eid = Command::parse(&h(PYSIM_GET_EID_PLAIN)).unwrap();
        assert_eq!(
            bytes_of(&host.wrap(&get_eid).unwrap()),
            hx(&h(s.get_eid_cmd)),
            "{}",
            s.name
        );
        let rsp = host
            .unwrap(&Response::new(h(s.get_eid_rsp), 0x9000))
            .unwrap();
        assert_eq!(hx(&rsp.data), hx(&h(PYSIM_GET_EID_RSP_PLAIN)), "{}", s.name);

        for (plain, wrapped) in PYSIM_CASES_PLAIN.iter().zip(s.cases) {
            let cmd = Command::parse(&h(plain)).unwrap();
            assert_eq!(
                bytes_of(&host.wrap(&cmd).unwrap()),
                hx(&h(wrapped)),
                "{} {plain}",
                s.name
            );
        }
    }
}

#[test]
fn pysim_sessions_card_side() {
    for s in &PYSIM {
        let rsp = h(s.init_upd_rsp);
        let mut kdd = [0u8; 10];
        kdd.copy_from_slice(&rsp[..10]);
        let counter = u32::from_be_bytes([0, rsp[29], rsp[30], rsp[31]]);
        let source = ChallengeSource::PseudoRandom {
            sequence_counter: counter - 1,
            aid: h(ISD_R),
        };
        let mut card = CardSession::new(pysim_keys(s.kvn, s.key_len), kdd, 0x70, source).unwrap();

        // The card computes the same challenge, cryptogram and counter.
        assert_eq!(
            card.receive(&h(s.init_upd_cmd)),
            Incoming::Handled(Response::new(rsp.clone(), 0x9000)),
            "{}",
            s.name
        );
        assert_eq!(card.sequence_counter(), Some(counter));
        assert_eq!(
            card.receive(&h(s.ext_auth_cmd)),
            Incoming::Handled(Response::status(0x9000)),
            "{}",
            s.name
        );
        assert_eq!(card.level().map(|l| l.p1()), Some(h(s.ext_auth_cmd)[2]));

        let got = card.receive(&h(s.get_eid_cmd));
        assert_eq!(
            got,
            Incoming::Application(Command::parse(&h(PYSIM_GET_EID_PLAIN)).unwrap()),
            "{}",
            s.name
        );
        let answer = card
            .wrap_response(&h(PYSIM_GET_EID_RSP_PLAIN), 0x9000)
            .unwrap();
        assert_eq!(hx(&answer.data), hx(&h(s.get_eid_rsp)), "{}", s.name);

        for (plain, wrapped) in PYSIM_CASES_PLAIN.iter().zip(s.cases) {
            let got = card.receive(&h(wrapped));
            assert_eq!(
                got,
                Incoming::Application(Command::parse(&h(plain)).unwrap()),
                "{} {plain}",
                s.name
            );
        }
    }
}

// Samsung/OpenSCP-Java, src/test/java/com/samsung/openscp/testdata/InputTestData.java
const SAMSUNG_ENC: &str = "1D72CD9283FD55162722C6BEAA4DC1877F4C0CD0ECC15E052AAC39A99AF9AD72";
const SAMSUNG_MAC: &str = "F4932BA02FFC3098D172790099D2838236F2E61068D56F4401CC0374C25AF8CB";
const SAMSUNG_DEK: &str = "B4BDC610C3F6793708FF1132E2C5BF60523AEAC06B32F204B851B6CC007C8D3C";
const SAMSUNG_HOST_CHALLENGE: &str = "06F85B77251BF79406F85B77251BF794";
// OutputTestData.java: plain GET STATUS responses (packages, applets, ISD).
const SAMSUNG_PLAIN_RSP: [&str; 3] = [
    "08A00000015141434C010010A00000022020030101010000000000060100\
     10A0000002202003010101000000000011010005A0000002480100",
    "0AA9A8A7A6A5A4A3A2A1A00F800AA0A1A2A3A4A5A6A7A8A9070009A00000015141434C00070010A000\
     0002202003010301000000000011070007A00000024804000700",
    "08A0000001510000000F9E",
];

struct SamsungSession {
    file: &'static str,
    key_len: usize,
    mode: Mode,
    init_upd_cmd: &'static str,
    init_upd_rapdu: &'static str,
    ext_auth_cmd: &'static str,
    /// (GET STATUS C-APDU, R-APDU) for P1 = 20, 40, 80.
    exchanges: [(&'static str, &'static str); 3],
}

const SAMSUNG: [SamsungSession; 6] = [
    SamsungSession {
        file: "SmartCardScp03Aes128S8ModeEmulation.java",
        key_len: 16,
        mode: Mode::S8,
        init_upd_cmd: "805030000806F85B77251BF79400",
        init_upd_rapdu: "A1A012430585513120853003709CE033FA78E6B10DDC2DBE8974C8B0DE00082A9000",
        ext_auth_cmd: "8482330010B08D6CE26B6CB3CCB411CF0296EB7B1D",
        exchanges: [
            (
                "84F22000185230BA64388B4A40E0B4DA5CC1DF51C285E4020D99D5AED1",
                "BD3292BFB1A23C4478E37292BA1EDF438770CE472FB7611FBDBD1C981A27FA4780A81A95D93C05F9C4C\
                 94839DED0363CFEA57CE2ECFB572B26F3474DAEEBBABC202942381F9755F59000",
            ),
            (
                "84F24000181819D47B42BBE6B9449BBC2BD43A090DAC1F2F0A52D9F34B",
                "BB82442BB5CC8C839620615D1F163D3DDBC9357D68EF4BAD997CFBB79A24C224A89488C44B25C3B23D4\
                 89E4E58A309D438FDD6E453D0E07216541FB142B977A3A7D4C4048BBE2BA068F04A0A4A9C50BAD232F8\
                 CA8EA1F40E9000",
            ),
            (
                "84F280001809F07C3DF47956B1052951FA28211BA7BABC05C321D9B3BF",
                "31EB08363026463BAD10AF29F24301F1D9B8532067F9313D97FDA39BBE6B6099BEFD623E1F79FB5D9000",
            ),
        ],
    },
    SamsungSession {
        file: "SmartCardScp03Aes192S8ModeEmulation.java",
        key_len: 24,
        mode: Mode::S8,
        init_upd_cmd: "805030000806F85B77251BF79400",
        init_upd_rapdu: "A1A012430585513120853003709CE033FA78E6B10D6E7C64F962A822A400082A9000",
        ext_auth_cmd: "848233001063B6CEFAC0EC098333860788C65220BA",
        exchanges: [
            (
                "84F2200018D9EDCBCB7F69CB1EF0508E6EDE933A6D80091E7D99CB3E51",
                "99077B167D43A4F313B59B63CC23EFD3B5158BDEF8F24D85E250570A4AAB81869A92307350267F0FBC2278F\
                 A3D34D2FD5D2B4E8C0362C01D082C76A17B80AEA4BA5FB9D7DA3BB3689000",
            ),
            (
                "84F2400018CDC4B0480CF151C1132655133115A8CA1A89964F2554551C",
                "AB7A97B6C673DF3D95378D06B7B42E25D7C3B22D6D1A42299FFED17F5973950EC68C77700FC019470674701\
                 78A1D06152ED648E95E8C3510B61CF0036DFD8C9F6FA167D32FDEB3F81A0E6B2BB35BCD4CD104692D131D77\
                 769000",
            ),
            (
                "84F280001896800333FA638A32DBCCBF4C7E52FBD5DA469A954E1D58F6",
                "E5E5761FEFF5C0C078ADBC4E77B7290094C99183AC73CAB99A7412D0194DEFFDD0895DCCE662D9459000",
            ),
        ],
    },
    SamsungSession {
        file: "SmartCardScp03Aes256S8ModeEmulation.java",
        key_len: 32,
        mode: Mode::S8,
        init_upd_cmd: "805030000806F85B77251BF79400",
        init_upd_rapdu: "A1A012430585513120853003709CE033FA78E6B10D8AFA7267CB63740E00082A9000",
        ext_auth_cmd: "848233001050E003735F92228269A094FFC07429FD",
        exchanges: [
            (
                "84F2200018BD57D1382AE8F66F7EB5F5991B92D1399044157C7DFD2761",
                "47D81041004B7E9208E3BEF1372E7CDE8CD995AEF207F138C80D45156F2D36F2B15BDC9C4D6FDB977434\
                 4495CCC83AE7BA0B39C734BF9CEBD07204AA5A67DF2D7E663D55FC4944C09000",
            ),
            (
                "84F240001845D2B475C3EFF8BBB254D0B6A8E6CA97CF5265D907A76070",
                "59E8DCFDC22D436336552128F790E1B383D6942ED4025F30FE8D95541E634E238BFD963D88DF822D8EB\
                 CC1272A9D56C7D1CBC306039647FC4977EFF562C0B8C01314B1C8B2D168A581A98C65B676B3EE4032E9\
                 1A9C0858EC9000",
            ),
            (
                "84F28000187083CA3ADA0F76CF7B3FFAC60ABE13599D521EE7B9224C49",
                "E58CB33A46F76909ADDDFF0C2821F4F25F22B5553C534DC69000",
            ),
        ],
    },
    SamsungSession {
        file: "SmartCardScp03Aes128S16ModeEmulation.java",
        key_len: 16,
        mode: Mode::S16,
        init_upd_cmd: "805030001006F85B77251BF79406F85B77251BF79400",
        init_upd_rapdu: "A1A012430585513120853003710617A2C34D50B562F7DECFC3DBF58A649EF733B7486D813C92E4CA61E5102\
                         F9100082A9000",
        ext_auth_cmd: "84823300201C6A43582F842A90D81CA4E970754664D8C0C6C340E007C5C6EBCDF4F7C065BE",
        exchanges: [
            (
                "84F2200020EB30913C363A6C1309D13ADC765D9DF1C44F207C2941B898A290F627B05AE990",
                "05717C3DED78C6BB7AEE55A68E66E0D7C90473C380A60755DD7B63ECF55FD0B4067612B43A0A05CDA95\
                 E9122C91D8527A21681805C1A25AAA38994E15A6379DF66EE234701C673C32DAF5C54B11085C49000",
            ),
            (
                "84F2400020F1EC5CF268D357692CD0FAF186A1E6C79F68B473C4672C0A08F0437B16314698",
                "D7B658F9308D59779672CE4E5D1B8E6BD2A5A90F745788DAA817980BF84C2522B791382D5A095868C09\
                 6AC6A851A98A028CBBA7AC67D5F834F7969FE199B0DBBA12EF90E27CCF95C062D27BADAFC3B03CFB696\
                 4CCBE3FC04B54EFCD3B446B4469000",
            ),
            (
                "84F2800020A9DDD67660ECC75765C431CD69AD53A79202F01E13B24C15F4CFF4C9B335EEE5",
                "5A866565D1D0F35427E010043F82E8ABCA25C79A3CAA41547838978F779563FFDEA329E3ABD1CBA719A\
                 6D9C13B7D45CC9000",
            ),
        ],
    },
    SamsungSession {
        file: "SmartCardScp03Aes192S16ModeEmulation.java",
        key_len: 24,
        mode: Mode::S16,
        init_upd_cmd: "805030001006F85B77251BF79406F85B77251BF79400",
        init_upd_rapdu: "A1A012430585513120853003710617A2C34D50B562F7DECFC3DBF58A64A378671D41E7F6E3F5254CA9D\
                         4C481A400082A9000",
        ext_auth_cmd: "848233002099033B5BB5246C859B9748E497EDAE8D9EBB7BD196CE4E3EBFC92343D69478AB",
        exchanges: [
            (
                "84F220002032319E399171DAF20FD8E8ECD1CE462569B7D5645AAD98E537593EF48816DB4B",
                "B6AB2FDB15B2D1A895B8329736C5AF47D4B6B6AECBB73E327A91D300D4BF0F36AD710F7FF5505481F69\
                 0EFE3561E1C5335EF510B018D56D21D5F1CA9557AC9E225D04413BAA39828273DBC4B00B0BF309000",
            ),
            (
                "84F2400020161D4B6C1E2D790D66EA1E890ADC3F45D59E2416D6DC553E8738C2ADA182E583",
                "3C24F511B4923F55DE51925292BEED9456359F54F01B3D0C6C30C5666030788FE6BD1345C802AE66E8C\
                 B06C93E64CFE74590D83E85E8B1E06A7A750A48E8554B1DB948BFD041432E824BCDD24AACD87F65A986\
                 15076CAD3418BD67BFC1B4FC4C9000",
            ),
            (
                "84F28000208BCC8139988A0F51441F6F8FF3C20A526CD783E30BEC1D8CC9D7E3D43AE779A5",
                "B2332173A07F9EBE27EDEA0DB5849B6CACC0F28A77DA52AB9A1E151399ABD07115DDB34C92C8DA0FFE6\
                 79FD8D7DF0F369000",
            ),
        ],
    },
    SamsungSession {
        file: "SmartCardScp03Aes256S16ModeEmulation.java",
        key_len: 32,
        mode: Mode::S16,
        init_upd_cmd: "805030001006F85B77251BF79406F85B77251BF79400",
        init_upd_rapdu: "A1A012430585513120853003710617A2C34D50B562F7DECFC3DBF58A6499D2966CF09C9201FDE8343E9\
                         3FB18B400082A9000",
        ext_auth_cmd: "848233002071D1A091C5D24AF177B00E69B1A32B4E30A5168CF8C86B19730DF915EF82D8A7",
        exchanges: [
            (
                "84F2200020DD3036DC4C636717702732ABBA185633873A933310002B25E386CF10A4E6B130",
                "A5E7309DCA3EFFA13D1AA03FE0D3E2BA8D04DF15A6A26989150F512ED453F5DFFB2A7E4EE4E2FFACEFC\
                 0945435BCAF3A914A9F7BD66B4F82635B7757AE82B54262489B3B58224F99E846E2A8061B17329000",
            ),
            (
                "84F2400020EC2F4F2DDA358BF87C9A946D129D7C12F132C6A63CDAD60E80526C9A6487580C",
                "160229863B7636672F094A2C2E62F845D3A4A38C0FB9171AF14FEE433CF4C2FA10A6E4F1EC14E8792FE\
                 0A009720C290A64C2FD9183167BFFF0AC4AF516838DE4E5A62B6AC4444AC81E5C73A6B7A57D6C55D268\
                 2B2F986C1F1FCD77DDAF69846C9000",
            ),
            (
                "84F28000207C873E7BDCE82D67EC28783A3C3222C01E70D8C7A498CA3C7E348944F44A18B3",
                "90AFB999D6499F47285B6319135F67F78D4CE73A3BD87F97DE623488BA9DBC7549F27DFF5B61E215A5C\
                 91F99D21682119000",
            ),
        ],
    },
];

fn samsung_keys(len: usize) -> StaticKeys {
    StaticKeys::new(
        0x30,
        &h(SAMSUNG_ENC)[..len],
        &h(SAMSUNG_MAC)[..len],
        &h(SAMSUNG_DEK)[..len],
    )
    .unwrap()
}

/// TestUtils.constructGetStatusCapdu: `80 F2 P1 00 02 4F 00`, no Le.
fn samsung_get_status(p1: u8) -> Command {
    Command::new(0x80, 0xF2, p1, 0x00).with_data(h("4F00"))
}

#[test]
fn samsung_sessions_host_side() {
    for s in &SAMSUNG {
        let challenge = &h(SAMSUNG_HOST_CHALLENGE)[..s.mode.len()];
        let mut host = HostSession::new(samsung_keys(s.key_len).into(), s.mode, challenge).unwrap();
        assert_eq!(
            bytes_of(&host.initialize_update()),
            hx(&h(s.init_upd_cmd)),
            "{}",
            s.file
        );
        let resp = Response::from_bytes(&h(s.init_upd_rapdu)).unwrap();
        host.process_initialize_update(&resp)
            .unwrap_or_else(|e| panic!("{}: {e}", s.file));
        let ea = host
            .external_authenticate(SecurityLevel::C_DEC_R_ENC_C_MAC_R_MAC)
            .unwrap();
        assert_eq!(bytes_of(&ea), hx(&h(s.ext_auth_cmd)), "{}", s.file);
        host.process_external_authenticate(&Response::status(0x9000))
            .unwrap();
        for ((p1, (capdu, rapdu)), plain) in [0x20, 0x40, 0x80]
            .into_iter()
            .zip(s.exchanges)
            .zip(SAMSUNG_PLAIN_RSP)
        {
            let wrapped = host.wrap(&samsung_get_status(p1)).unwrap();
            assert_eq!(bytes_of(&wrapped), hx(&h(capdu)), "{} P1={p1:02X}", s.file);
            let rsp = host
                .unwrap(&Response::from_bytes(&h(rapdu)).unwrap())
                .unwrap();
            assert_eq!(rsp.sw, 0x9000);
            assert_eq!(hx(&rsp.data), hx(&h(plain)), "{} P1={p1:02X}", s.file);
        }
    }
}

#[test]
fn samsung_sessions_card_side() {
    for s in &SAMSUNG {
        // The emulated card's challenge is fixed, not derived from a
        // sequence counter, so the card here runs in random-challenge mode
        // (i without b5) and is handed that challenge.
        let rapdu = Response::from_bytes(&h(s.init_upd_rapdu)).unwrap();
        let published = InitUpdateResponse::parse(&rapdu.data).unwrap();
        let challenge = published.card_challenge.clone();
        let i_param = published.i_param & !0x10;
        let source = ChallengeSource::Random(Box::new(move |buf: &mut [u8]| {
            buf.copy_from_slice(&challenge)
        }));
        let mut card =
            CardSession::new(samsung_keys(s.key_len), published.kdd, i_param, source).unwrap();

        let Incoming::Handled(resp) = card.receive(&h(s.init_upd_cmd)) else {
            panic!("{}: INITIALIZE UPDATE not handled", s.file)
        };
        assert_eq!(resp.sw, 0x9000);
        let ours = InitUpdateResponse::parse(&resp.data).unwrap();
        assert_eq!(ours.kdd, published.kdd);
        assert_eq!(ours.kvn, published.kvn);
        assert_eq!(
            hx(&ours.card_cryptogram),
            hx(&published.card_cryptogram),
            "{}",
            s.file
        );

        assert_eq!(
            card.receive(&h(s.ext_auth_cmd)),
            Incoming::Handled(Response::status(0x9000)),
            "{}",
            s.file
        );
        for ((p1, (capdu, rapdu)), plain) in [0x20, 0x40, 0x80]
            .into_iter()
            .zip(s.exchanges)
            .zip(SAMSUNG_PLAIN_RSP)
        {
            assert_eq!(
                card.receive(&h(capdu)),
                Incoming::Application(samsung_get_status(p1)),
                "{}",
                s.file
            );
            let answer = card.wrap_response(&h(plain), 0x9000).unwrap();
            let published = h(rapdu);
            if answer.to_bytes().len() == published.len() {
                assert_eq!(
                    hx(&answer.to_bytes()),
                    hx(&published),
                    "{} P1={p1:02X}",
                    s.file
                );
            } else {
                // Samsung's emulated card padded this response with extra
                // zero blocks (e.g. 11 data bytes to 32, where §4.1.4 gives
                // 16). CBC makes our ciphertext a prefix of theirs; the R-MAC
                // (over the whole ciphertext) then differs.
                let ours = &answer.data[..answer.data.len() - s.mode.len()];
                assert!(published.len() > answer.to_bytes().len());
                assert_eq!(
                    hx(ours),
                    hx(&published[..ours.len()]),
                    "{} P1={p1:02X}",
                    s.file
                );
            }
        }
    }
}

// suma12/asterix, asterix/SCP03.py, class Test128.
const ASTERIX_AID: &str = "A000000018434D08090A0B0C000000";
const ASTERIX_KDD: &str = "000050C7606A8CF64800";
const ASTERIX_HOST_CHALLENGE: &str = "0807060504030201";

fn asterix_keys() -> StaticKeys {
    // keyENC '@ABCDEFGHIJKLMNO', keyMAC 4011223344455667 + 'HIJKLMNO',
    // keyDEK 9876543210 + '@ABCDEFGHIJ'.
    StaticKeys::new(
        0x30,
        b"@ABCDEFGHIJKLMNO",
        &[h("4011223344455667"), b"HIJKLMNO".to_vec()].concat(),
        &[h("9876543210"), b"@ABCDEFGHIJ".to_vec()].concat(),
    )
    .unwrap()
}

fn asterix_card() -> CardSession {
    let mut kdd = [0u8; 10];
    kdd.copy_from_slice(&h(ASTERIX_KDD));
    let source = ChallengeSource::PseudoRandom {
        sequence_counter: 0x29,
        aid: h(ASTERIX_AID),
    };
    CardSession::new(asterix_keys(), kdd, 0x70, source).unwrap()
}

#[test]
fn asterix_mutual_authentication() {
    // test_Mutauth: the card's INITIALIZE UPDATE response, session keys,
    // cryptograms, EXTERNAL AUTHENTICATE and MAC chaining value.
    let mut card = asterix_card();
    let mut host =
        HostSession::new(asterix_keys().into(), Mode::S8, &h(ASTERIX_HOST_CHALLENGE)).unwrap();
    let iu = host.initialize_update();
    // asterix sends no Le; otherwise the same bytes.
    assert_eq!(hx(&iu.encode().unwrap()), "8050300008080706050403020100");
    let Incoming::Handled(resp) = card.receive(&iu.encode().unwrap()) else {
        panic!("INITIALIZE UPDATE not handled")
    };
    assert_eq!(
        hx(&resp.data),
        "000050C7606A8CF64800300370A3F5F144D19BE66E72BFCBDF4A14515F00002A"
    );
    let info = host.process_initialize_update(&resp).unwrap();
    assert_eq!(hx(&info.card_challenge), "A3F5F144D19BE66E");
    let sk = host.session_keys().unwrap();
    assert_eq!(hx(sk.s_enc.expose()), "852D207B7CC8C880231EDFD5C644CFB1");
    assert_eq!(hx(sk.s_mac.expose()), "7131B9369F3D19850E6919CD3321523E");
    assert_eq!(hx(sk.s_rmac.expose()), "B570AA1FDE18F9179B5CBD42D8939D05");
    let hc = &h(ASTERIX_HOST_CHALLENGE);
    assert_eq!(
        hx(&sk.card_cryptogram(hc, &h("A3F5F144D19BE66E")).unwrap()),
        "72BFCBDF4A14515F"
    );
    assert_eq!(
        hx(&sk.host_cryptogram(hc, &h("A3F5F144D19BE66E")).unwrap()),
        "AEB8DAD1865B85E2"
    );

    let ea = host.external_authenticate(SecurityLevel::C_MAC).unwrap();
    assert_eq!(bytes_of(&ea), "8482010010AEB8DAD1865B85E249FC4CF184E61DCD");
    assert_eq!(
        hx(&host.chaining_value().unwrap()),
        "49FC4CF184E61DCD4C3928E4C617FBA3"
    );
    assert_eq!(
        card.receive(&ea.encode().unwrap()),
        Incoming::Handled(Response::status(0x9000))
    );
    host.process_external_authenticate(&Response::status(0x9000))
        .unwrap();
}

#[test]
fn asterix_command_encryption() {
    // test_Cdecrypt: security level 03, first command after EXTERNAL
    // AUTHENTICATE; the published value is the encrypted data field.
    let mut card = asterix_card();
    let mut host =
        HostSession::new(asterix_keys().into(), Mode::S8, &h(ASTERIX_HOST_CHALLENGE)).unwrap();
    let Incoming::Handled(resp) = card.receive(&host.initialize_update().encode().unwrap()) else {
        panic!()
    };
    host.process_initialize_update(&resp).unwrap();
    let ea = host
        .external_authenticate(SecurityLevel::C_DEC_C_MAC)
        .unwrap();
    assert_eq!(
        card.receive(&ea.encode().unwrap()),
        Incoming::Handled(Response::status(0x9000))
    );
    host.process_external_authenticate(&Response::status(0x9000))
        .unwrap();

    let plain = Command::parse(&h("80E60200150A45786572636973655236000006EF04C602068200")).unwrap();
    let wrapped = host.wrap(&plain).unwrap();
    assert_eq!(wrapped.data().len(), 32 + 8);
    assert_eq!(
        hx(&wrapped.data()[..32]),
        "DF31907FC027482D5DCB7DC028245F7C108CA4D2AFF12275079768E1EFE9429E"
    );
    // test_unwrapAPDU_03: the card recovers the command.
    assert_eq!(
        card.receive(&wrapped.encode().unwrap()),
        Incoming::Application(plain)
    );
}
