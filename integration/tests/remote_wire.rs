//! The wire formats of `taskscope::remote` against arbitrary input: the
//! parsers never panic, reject what is not well formed with an error, and
//! read back what the encoders write (never longer than the original).

use std::time::Duration;

use proptest::prelude::*;
use taskscope::remote::{Inbound, Outbound, Refusal, WireError};
use taskscope::CancelReason;

// The formats, without a server's maximum or minimum.
fn parse_grpc_timeout(value: &[u8]) -> Result<Duration, WireError> {
    Inbound::grpc().parse(value)
}
fn parse_budget_millis(value: &[u8]) -> Result<Duration, WireError> {
    Inbound::http().parse(value)
}
fn grpc_timeout(budget: Duration) -> String {
    Outbound::grpc().encode(budget)
}
fn budget_millis(budget: Duration) -> String {
    Outbound::http().encode(budget)
}

fn unit_length(unit: u8) -> Duration {
    match unit {
        b'n' => Duration::from_nanos(1),
        b'u' => Duration::from_micros(1),
        b'm' => Duration::from_millis(1),
        b'S' => Duration::from_secs(1),
        b'M' => Duration::from_secs(60),
        b'H' => Duration::from_secs(3600),
        other => panic!("unit {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn no_input_makes_a_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = parse_grpc_timeout(&bytes);
        let _ = parse_budget_millis(&bytes);
        let _ = CancelReason::from_wire(&bytes);
        let _ = Inbound::http().max(Duration::from_secs(30)).read(Some(&bytes));
        let _ = Inbound::grpc().min(Duration::MAX).read(Some(&bytes));
    }

    #[test]
    fn grpc_timeout_reads_back_at_most_one_unit_shorter(nanos in any::<u64>(), secs in any::<u64>()) {
        for budget in [Duration::from_nanos(nanos), Duration::new(secs % (100_000_000 * 3600), 0)] {
            let text = grpc_timeout(budget);
            let unit = unit_length(*text.as_bytes().last().unwrap());
            prop_assert!(text.len() <= 9, "{text}");
            let back = parse_grpc_timeout(text.as_bytes()).unwrap();
            prop_assert!(back <= budget, "{text}: {back:?} > {budget:?}");
            prop_assert!(budget - back < unit, "{text}: lost {:?}", budget - back);
        }
    }

    #[test]
    fn well_formed_grpc_timeouts_parse(count in 0u64..=99_999_999, unit in prop::sample::select(b"HMSmun".to_vec())) {
        let text = format!("{count}{}", unit as char);
        let parsed = parse_grpc_timeout(text.as_bytes());
        prop_assert_eq!(parsed, Ok(unit_length(unit) * u32::try_from(count).unwrap()));
    }

    #[test]
    fn overlong_negative_and_fractional_values_are_errors(count in 100_000_000u64..u64::MAX, small in 0u64..1000) {
        let overlong = format!("{count}S");
        prop_assert!(matches!(parse_grpc_timeout(overlong.as_bytes()), Err(WireError::TooLong { max: 8, .. })), "{overlong}");
        let negative = format!("-{small}m");
        prop_assert_eq!(parse_grpc_timeout(negative.as_bytes()), Err(WireError::NotADigit));
        let fraction = format!("{small}.5S");
        prop_assert_eq!(parse_grpc_timeout(fraction.as_bytes()), Err(WireError::NotADigit));
        let negative_millis = format!("-{small}");
        prop_assert_eq!(parse_budget_millis(negative_millis.as_bytes()), Err(WireError::NotADigit));
    }

    #[test]
    fn millis_read_back_whole(millis in any::<u64>(), nanos in 0u32..1_000_000) {
        let budget = Duration::from_millis(millis) + Duration::from_nanos(u64::from(nanos));
        let text = budget_millis(budget);
        prop_assert_eq!(parse_budget_millis(text.as_bytes()), Ok(Duration::from_millis(millis)));
    }

    #[test]
    fn inbound_clamps_and_expires(millis in any::<u64>()) {
        let inbound = Inbound::http().max(Duration::from_secs(30)).min(Duration::from_millis(5));
        let read = inbound.read(Some(millis.to_string().as_bytes()));
        let expected = match Duration::from_millis(millis) {
            budget if budget <= Duration::from_millis(5) => Err(Refusal::Expired(CancelReason::RemoteDeadline)),
            budget => Ok(Some(budget.min(Duration::from_secs(30)))),
        };
        prop_assert_eq!(read, expected);
    }
}

#[test]
fn huge_values_are_handled() {
    assert_eq!(
        parse_grpc_timeout(b"99999999H"),
        Ok(Duration::from_secs(99_999_999 * 3600))
    );
    assert_eq!(grpc_timeout(Duration::MAX), "99999999H");
    assert_eq!(budget_millis(Duration::MAX), u64::MAX.to_string());
    assert_eq!(
        parse_budget_millis(b"99999999999999999999"),
        Err(WireError::TooLarge)
    );
    assert_eq!(
        parse_budget_millis(&[b'9'; 4096]),
        Err(WireError::TooLong {
            digits: 4096,
            max: 20
        })
    );
    let no_header = Inbound::http().read(None);
    assert_eq!(no_header, Ok(None));
    assert_eq!(
        Inbound::http().read(Some(b"0")),
        Err(Refusal::Expired(CancelReason::RemoteDeadline))
    );
}

#[test]
fn every_reason_survives_the_wire_as_its_kind() {
    for reason in [
        CancelReason::Timeout,
        CancelReason::RemoteDeadline,
        CancelReason::Shutdown,
        CancelReason::ClientDisconnected,
        CancelReason::requested(),
    ] {
        let back = CancelReason::from_wire(reason.to_wire().as_bytes()).unwrap();
        assert_eq!(back, reason);
    }
    let sibling = CancelReason::from_wire(CancelReason::sibling_failed("x").to_wire().as_bytes());
    assert!(matches!(sibling, Ok(CancelReason::Requested(Some(_)))));
    let inherited = CancelReason::Ancestor(std::sync::Arc::new(CancelReason::RemoteDeadline));
    assert_eq!(inherited.to_wire(), "deadline");
    assert!(CancelReason::from_wire(b"").is_err());
}

#[tokio::test(start_paused = true)]
async fn extreme_durations_in_the_policies() {
    use taskscope::remote::RequestScopes;
    use taskscope::CancellationSource;

    // A maximum of zero leaves nothing: expired. A maximum of MAX clamps
    // nothing; a minimum of MAX expires everything.
    assert_eq!(
        Inbound::http().max(Duration::ZERO).read(Some(b"500")),
        Err(Refusal::Expired(CancelReason::RemoteDeadline))
    );
    assert_eq!(
        Inbound::http().max(Duration::MAX).read(Some(b"500")),
        Ok(Some(Duration::from_millis(500)))
    );
    assert_eq!(
        Inbound::grpc().min(Duration::MAX).read(Some(b"99999999H")),
        Err(Refusal::Expired(CancelReason::RemoteDeadline))
    );

    // A margin of MAX spends any budget; of zero, sends all of it.
    let request = CancellationSource::with_timeout(Duration::from_secs(1));
    assert!(Outbound::http()
        .margin(Duration::MAX)
        .value_for(&request.token())
        .is_err());
    assert_eq!(
        Outbound::http()
            .margin(Duration::ZERO)
            .value_for(&request.token()),
        Ok(Some("1000".to_owned()))
    );

    // A budget too large for the clock never fires; zero is refused.
    let scopes = RequestScopes::new().deadline_from(Inbound::http());
    let u64_max_ms = u64::MAX.to_string();
    let forever = scopes.open(
        "forever",
        Some(u64_max_ms.as_bytes()),
        &[],
        |_| async {
            tokio::time::sleep(Duration::from_secs(86_400 * 365)).await;
            taskscope::token().is_cancelled()
        },
        |_| true,
    );
    assert!(!forever.await);
    let zero = scopes.open("zero", Some(b"0"), &[], |_| async { "ran" }, |_| "refused");
    assert_eq!(zero.await, "refused");
}

static TRAVELS: taskscope::ScopeLocal<String> = taskscope::ScopeLocal::new("travels")
    .across_processes(|value| value.clone(), |text| Some(text.to_owned()));

/// What a server binds from `lines` of incoming `baggage`, read back in
/// the request's scope.
fn received(lines: &[&[u8]], limits: Option<(usize, usize)>) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut scopes = taskscope::remote::RequestScopes::new().accept(&TRAVELS);
        if let Some((bytes, members)) = limits {
            scopes = scopes.baggage_limits(bytes, members);
        }
        scopes
            .open(
                "GET /",
                None,
                lines,
                |_| async { TRAVELS.get() },
                |_| panic!("baggage never refuses a request"),
            )
            .await
    })
}

/// The `baggage` a client sends from a scope binding `value`.
fn sent(value: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(
        taskscope::ScopeBuilder::new()
            .bind(&TRAVELS, value.to_owned())
            .run(async |_| Ok::<_, taskscope::Cancelled>(Outbound::http().baggage())),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn no_baggage_makes_a_server_panic_or_refuse(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..4),
    ) {
        let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        // Whatever arrives, the request runs; a value, if bound, came from
        // a well-formed `travels` member.
        if let Some(value) = received(&lines, None) {
            let joined = lines.join(&b',');
            prop_assert!(joined.windows(8).any(|w| w == b"travels="), "{value:?}");
        }
    }

    #[test]
    fn any_value_survives_the_trip(value in any::<String>()) {
        let header = sent(&value).unwrap();
        prop_assert!(header.bytes().all(|b| b.is_ascii_graphic()), "{header}");
        prop_assert_eq!(received(&[header.as_bytes()], None), Some(value));
    }
}

#[test]
fn baggage_limits_cut_what_is_read() {
    let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
    let mut lines = many.join(",");
    lines.push_str(",travels=late");
    // Past the 64th member: not read.
    assert_eq!(received(&[lines.as_bytes()], None), None);
    assert_eq!(received(&[b"travels=early"], Some((0, 64))), None);
    assert_eq!(received(&[b"travels=early"], Some((8_192, 0))), None);
    assert_eq!(
        received(&[b"x=1", b"travels=second%20line"], None).as_deref(),
        Some("second line")
    );
    // Huge limits read everything there is.
    assert_eq!(
        received(&[lines.as_bytes()], Some((usize::MAX, usize::MAX))).as_deref(),
        Some("late")
    );
}
