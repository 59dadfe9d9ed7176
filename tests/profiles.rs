//! Issue 4's acceptance tests: user and group profiles end to end, and incremental syncs that send
//! only what changed, through the real `mixsync serve …` processes with the emulator as Mixpanel.

use std::time::Duration;

use mixsync_e2e::*;
use mixsync_proto::v1 as pb;
use serde_json::{Value, json};

const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// `users`: ids missing on every 10,000th row, a 1.1 MB bio on rows 1, 12501, 25001, 37501 (an
/// update over 1 MB), duplicate tags to union. `companies`: no id on every 2,500th row.
async fn seed(world: &mut World) -> anyhow::Result<()> {
    let db = world.warehouse().await?;
    db.batch_execute(
        "CREATE TABLE users AS
         SELECT g AS id,
                CASE WHEN g % 10000 = 0 THEN NULL ELSE 'u-' || g END AS user_id,
                'u' || g || '@example.com' AS email,
                'User ' || g AS name,
                (ARRAY['free','pro','team'])[1 + g % 3] AS plan,
                timestamptz '2025-01-01 00:00:00+00' + make_interval(mins => g::int) AS first_seen,
                ARRAY['a', 'a', 'b'] AS tags,
                CASE WHEN g % 12500 = 1 THEN repeat('x', 1100000) ELSE 'hi' END AS bio
         FROM generate_series(1::bigint, 50000::bigint) AS g;
         CREATE TABLE companies AS
         SELECT g AS id,
                CASE WHEN g % 2500 = 0 THEN NULL ELSE g END AS company_id,
                'Company ' || g AS name,
                (10 + g % 990)::int AS employees
         FROM generate_series(1::bigint, 5000::bigint) AS g;",
    )
    .await?;
    Ok(())
}

fn property(column: &str, name: &str, operation: pb::ProfileOperation) -> pb::PropertyMapping {
    pb::PropertyMapping {
        column: column.into(),
        property: name.into(),
        operation: operation as i32,
        unset_when_null: false,
    }
}

async fn create(
    control: &mut Control,
    name: &str,
    wh: &str,
    target: &str,
    query: &str,
    object: pb::MixpanelObject,
    mapping: pb::FieldMapping,
) -> anyhow::Result<pb::Activation> {
    Ok(control
        .create_activation(pb::CreateActivationRequest {
            activation: Some(pb::ActivationSpec {
                name: name.into(),
                warehouse_id: wh.into(),
                target_id: target.into(),
                query: query.into(),
                object: object as i32,
                sync_behaviour: pb::SyncBehaviour::Upsert as i32,
                mapping: Some(mapping),
                options: None,
                schedule: None,
            }),
        })
        .await?
        .into_inner()
        .activation
        .unwrap_or_default())
}

async fn users_activation(
    control: &mut Control,
    wh: &str,
    target: &str,
) -> anyhow::Result<pb::Activation> {
    use pb::ProfileOperation::{Set, SetOnce, Union};
    let mapping = pb::FieldMapping {
        distinct_id: column("user_id"),
        properties: vec![
            property("email", "$email", Set),
            property("name", "$name", Set),
            property("plan", "plan", Set),
            property("first_seen", "first_seen", SetOnce),
            property("tags", "tags", Union),
            property("bio", "bio", Set),
        ],
        ..Default::default()
    };
    let query = "SELECT user_id, email, name, plan, first_seen, tags, bio FROM users ORDER BY id";
    create(
        control,
        "users",
        wh,
        target,
        query,
        pb::MixpanelObject::UserProfiles,
        mapping,
    )
    .await
}

async fn companies_activation(
    control: &mut Control,
    wh: &str,
    target: &str,
) -> anyhow::Result<pb::Activation> {
    use pb::ProfileOperation::Set;
    let mapping = pb::FieldMapping {
        group_key: Some(pb::FieldSource {
            source: Some(pb::field_source::Source::Constant("company_id".into())),
        }),
        group_id: column("company_id"),
        properties: vec![
            property("name", "$name", Set),
            property("employees", "employees", Set),
        ],
        ..Default::default()
    };
    let query = "SELECT company_id, name, employees FROM companies ORDER BY id";
    create(
        control,
        "companies",
        wh,
        target,
        query,
        pb::MixpanelObject::GroupProfiles,
        mapping,
    )
    .await
}

async fn profiles(world: &World) -> anyhow::Result<Vec<Value>> {
    let body: Value = reqwest::get(format!(
        "{}/_emulator/profiles?project_id=1",
        world.emulator_url()
    ))
    .await?
    .json()
    .await?;
    Ok(body["profiles"].as_array().cloned().unwrap_or_default())
}

async fn groups(world: &World) -> anyhow::Result<Vec<Value>> {
    let body: Value = reqwest::get(format!(
        "{}/_emulator/groups?project_id=1&group_key=company_id",
        world.emulator_url()
    ))
    .await?
    .json()
    .await?;
    Ok(body["groups"].as_array().cloned().unwrap_or_default())
}

fn find<'a>(list: &'a [Value], key: &str, id: &str) -> &'a Value {
    list.iter()
        .find(|p| p[key] == id)
        .unwrap_or_else(|| panic!("no profile {key}={id}"))
}

async fn requests(world: &World, endpoint: &str) -> anyhow::Result<u64> {
    let stats = emulator_stats(world).await?;
    Ok(stats["requests"][endpoint]
        .as_object()
        .map(|by_status| by_status.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0))
}

fn counts_of(run: &pb::Run) -> (u64, u64, u64, u64) {
    let c = counts(run);
    assert_eq!(
        c.extracted,
        c.skipped + c.loaded + c.failed,
        "counts add up: {c:?}"
    );
    (c.extracted, c.skipped, c.loaded, c.failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_companies_sync_then_only_changes_are_sent() -> anyhow::Result<()> {
    let mut world = World::new("profiles").await?;
    seed(&mut world).await?;
    let mut control = world.start_all_objects().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let users = users_activation(&mut control, &wh, &target).await?;
    let companies = companies_activation(&mut control, &wh, &target).await?;

    // First run: everything valid arrives; the bad rows fail alone with their reasons.
    let run = run_to_end(&mut control, &users.id, RUN_TIMEOUT).await?;
    assert_eq!(run.state, pb::RunState::PartiallyFailed as i32, "{run:?}");
    assert_eq!(counts_of(&run), (50_000, 0, 49_991, 9));
    let (failed, _) = failed_records(&mut control, &run.id).await?;
    let too_large: Vec<u64> = failed
        .iter()
        .filter(|f| f.rule == "update_too_large")
        .map(|f| f.row_number)
        .collect();
    assert_eq!(too_large, [1, 12_501, 25_001, 37_501], "{failed:?}");
    assert!(
        failed
            .iter()
            .filter(|f| f.rule != "update_too_large")
            .all(|f| f.row_number % 10_000 == 0 && f.message.contains("user_id")),
        "{failed:?}"
    );

    let list = profiles(&world).await?;
    assert_eq!(list.len(), 49_991);
    let p = find(&list, "distinct_id", "u-42");
    assert_eq!(p["properties"]["$email"], "u42@example.com");
    assert_eq!(p["properties"]["$name"], "User 42");
    assert_eq!(p["properties"]["plan"], "free");
    assert_eq!(
        p["properties"]["tags"],
        json!(["a", "b"]),
        "$union deduplicates"
    );
    let first_seen = p["properties"]["first_seen"].clone();
    assert!(first_seen.is_string(), "{p}");

    let run = run_to_end(&mut control, &companies.id, RUN_TIMEOUT).await?;
    assert_eq!(counts_of(&run), (5_000, 0, 4_998, 2));
    let list = groups(&world).await?;
    assert_eq!(list.len(), 4_998);
    assert_eq!(
        find(&list, "group_id", "7")["properties"]["$name"],
        "Company 7"
    );
    // 4,998 updates at most 200 per request: never more (the emulator would have refused them).
    let stats = emulator_stats(&world).await?;
    assert!(stats["requests"]["groups"].get("400").is_none(), "{stats}");
    assert!(requests(&world, "groups").await? >= 25);

    // Second run, nothing changed: nothing is sent; the invalid rows are tried (and fail) again.
    let engage_before = requests(&world, "engage").await?;
    let run = run_to_end(&mut control, &users.id, RUN_TIMEOUT).await?;
    assert_eq!(counts_of(&run), (50_000, 49_991, 0, 9));
    assert_eq!(
        requests(&world, "engage").await?,
        engage_before,
        "no /engage call"
    );
    let run = run_to_end(&mut control, &companies.id, RUN_TIMEOUT).await?;
    assert_eq!(counts_of(&run), (5_000, 4_998, 0, 2));

    // 100 rows change (a $set and a $set_once column), and one invalid row is fixed.
    world
        .warehouse()
        .await?
        .batch_execute(
            "UPDATE users SET plan = 'enterprise', first_seen = first_seen + interval '1 day' WHERE id BETWEEN 2 AND 101;
             UPDATE users SET user_id = 'u-fixed' WHERE id = 10000;",
        )
        .await?;
    let run = run_to_end(&mut control, &users.id, RUN_TIMEOUT).await?;
    assert_eq!(counts_of(&run), (50_000, 49_891, 101, 8));
    let list = profiles(&world).await?;
    assert_eq!(list.len(), 49_992);
    let p = find(&list, "distinct_id", "u-42");
    assert_eq!(p["properties"]["plan"], "enterprise");
    assert_eq!(
        p["properties"]["first_seen"], first_seen,
        "$set_once does not overwrite"
    );
    find(&list, "distinct_id", "u-fixed");

    // A full resync sends everything again.
    let run = control
        .trigger_run(pb::TriggerRunRequest {
            activation_id: companies.id.clone(),
            full_resync: true,
        })
        .await?
        .into_inner()
        .run
        .expect("a run");
    let run = wait_for_end(&mut control, &run.id, RUN_TIMEOUT).await?;
    assert_eq!(counts_of(&run), (5_000, 0, 4_998, 2));
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_in_one_run_are_reported_not_sent_twice() -> anyhow::Result<()> {
    let mut world = World::new("dupkeys").await?;
    world
        .warehouse()
        .await?
        .batch_execute(
            "CREATE TABLE people AS
             SELECT g AS id, 'p-' || (CASE WHEN g IN (700, 900) THEN 3 ELSE g END) AS user_id, 'n' || g AS name
             FROM generate_series(1, 1000) AS g",
        )
        .await?;
    let mut control = world.start_all_objects().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let mapping = pb::FieldMapping {
        distinct_id: column("user_id"),
        properties: vec![property("name", "name", pb::ProfileOperation::Set)],
        ..Default::default()
    };
    let activation = create(
        &mut control,
        "people",
        &wh,
        &target,
        "SELECT user_id, name FROM people ORDER BY id",
        pb::MixpanelObject::UserProfiles,
        mapping,
    )
    .await?;
    let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(counts_of(&run), (1_000, 0, 998, 2));
    let (failed, _) = failed_records(&mut control, &run.id).await?;
    // Rows 3, 700 and 900 share `p-3`. Batches are mapped concurrently, so which one claims the key
    // first is not fixed; exactly one is sent and the two others are reported.
    let mut rows: Vec<u64> = failed.iter().map(|f| f.row_number).collect();
    rows.sort_unstable();
    assert_eq!(rows.len(), 2, "{failed:?}");
    assert!(rows.iter().all(|r| [3, 700, 900].contains(r)), "{rows:?}");
    assert!(
        failed.iter().all(|f| f.rule == "duplicate_key"),
        "{failed:?}"
    );
    let sent = [3u64, 700, 900]
        .into_iter()
        .find(|r| !rows.contains(r))
        .expect("one row sent");
    let list = profiles(&world).await?;
    assert_eq!(
        find(&list, "distinct_id", "p-3")["properties"]["name"],
        format!("n{sent}"),
        "the row that was not reported is the one Mixpanel holds"
    );
    world.cleanup().await;
    Ok(())
}
