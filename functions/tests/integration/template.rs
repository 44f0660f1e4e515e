//! infra/template.yaml as a security review reads it: secrets, IAM scope, logs, alarms. The
//! YAML loader drops CloudFormation's short-form tags (`!Ref X` reads as `X`, `!Sub "…"` as the
//! string), which is all these checks need.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;
use yaml_rust2::{Yaml, YamlLoader};

fn template_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"))
        .expect("infra/template.yaml")
}

fn template() -> Yaml {
    YamlLoader::load_from_str(&template_text())
        .expect("YAML")
        .remove(0)
}

fn resources(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_hash()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id").to_owned(), v))
        .collect()
}

fn of_type<'a>(t: &'a Yaml, kind: &str) -> Vec<(String, &'a Yaml)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .collect()
}

/// Every string in `y`, depth first.
fn strings(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out)
        }),
        _ => {}
    }
}

fn all_strings(y: &Yaml) -> Vec<String> {
    let mut out = Vec::new();
    strings(y, &mut out);
    out
}

/// The IAM statements of a role (inline policies) or of a SAM state machine's `Policies`.
fn statements(policies: &Yaml) -> Vec<&Yaml> {
    let mut out = Vec::new();
    for policy in policies.as_vec().into_iter().flatten() {
        let list = if policy["PolicyDocument"].is_badvalue() {
            &policy["Statement"]
        } else {
            &policy["PolicyDocument"]["Statement"]
        };
        out.extend(list.as_vec().into_iter().flatten());
    }
    out
}

fn actions(statement: &Yaml) -> Vec<String> {
    all_strings(&statement["Action"])
}

#[test]
fn secrets_are_named_and_roles_hold_what_their_functions_use() {
    let t = template();
    let secrets = &t["Parameters"]["SourceSecretArns"];
    assert!(
        secrets["Default"].is_badvalue(),
        "SourceSecretArns must have no default (never \"*\")"
    );
    let pattern = secrets["AllowedPattern"].as_str().expect("AllowedPattern");
    // The secret-name part admits no `*` (an IAM wildcard) and the whole value must match.
    let name_part = pattern.split(":secret:").nth(1).unwrap_or_default();
    assert!(
        pattern.starts_with("^arn:") && name_part.ends_with("+$") && !name_part.contains('*'),
        "{pattern}"
    );
    for (name, p) in t["Parameters"].as_hash().expect("Parameters") {
        assert_ne!(p["Default"].as_str(), Some("*"), "{name:?} defaults to *");
    }

    // The steps' role: GetSecretValue on the parameter only, kms:Decrypt on the key parameter
    // through Secrets Manager only, ENI permissions only with a VPC.
    let step_role = &t["Resources"]["StepFunctionRole"]["Properties"];
    let step_statements = statements(&step_role["Policies"]);
    let get_secret = step_statements
        .iter()
        .find(|s| actions(s).contains(&"secretsmanager:GetSecretValue".to_owned()))
        .expect("GetSecretValue");
    assert_eq!(get_secret["Resource"].as_str(), Some("SourceSecretArns"));
    let text = template_text();
    assert!(text.contains("Action: kms:Decrypt\n                  Resource: !Ref KmsKeyArn"));
    assert!(text.contains("kms:ViaService: !Sub \"secretsmanager.${AWS::Region}.amazonaws.com\""));
    let managed = all_strings(&step_role["ManagedPolicyArns"]);
    assert_eq!(
        managed[0], "UseVpc",
        "VPC access only under UseVpc: {managed:?}"
    );
    // No statement anywhere grants everything on a service.
    for s in all_strings(&t) {
        assert!(!s.ends_with(":*\"") && !s.contains("stateMachine:*"), "{s}");
    }
    for (id, role) in of_type(&t, "AWS::IAM::Role") {
        for s in statements(&role["Properties"]["Policies"]) {
            for a in actions(s) {
                assert!(!a.ends_with(":*") && a != "*", "{id} grants {a}");
            }
        }
    }

    // The state machine: a fixed name, StartExecution on itself only.
    let sm = &t["Resources"]["MigrationStateMachine"]["Properties"];
    assert_eq!(sm["Name"].as_str(), Some("${AWS::StackName}-migration"));
    let start_self: Vec<_> = statements(&sm["Policies"])
        .into_iter()
        .filter(|s| actions(s).contains(&"states:StartExecution".to_owned()))
        .collect();
    assert_eq!(start_self.len(), 1);
    assert!(start_self[0]["Resource"]
        .as_str()
        .expect("one ARN")
        .ends_with(":stateMachine:${AWS::StackName}-migration"));

    // start-migration: starts and describes this machine's executions, reads no secret, runs
    // outside the VPC, and knows the allowed secrets.
    let start_role = &t["Resources"]["StartMigrationRole"]["Properties"];
    let start_statements = statements(&start_role["Policies"]);
    let by_action = |action: &str| -> String {
        start_statements
            .iter()
            .find(|s| actions(s).contains(&action.to_owned()))
            .and_then(|s| s["Resource"].as_str())
            .unwrap_or_else(|| panic!("start-migration lacks {action}"))
            .to_owned()
    };
    assert!(
        by_action("states:StartExecution").ends_with(":stateMachine:${AWS::StackName}-migration")
    );
    assert!(
        by_action("states:DescribeExecution").ends_with(":execution:${AWS::StackName}-migration:*")
    );
    assert!(!all_strings(start_role)
        .iter()
        .any(|s| s.contains("secretsmanager")));
    let start = &t["Resources"]["StartMigrationFunction"]["Properties"];
    assert!(start["VpcConfig"].is_badvalue());
    assert!(!start["Environment"]["Variables"]["TSMIGRATE_ALLOWED_SECRET_ARNS"].is_badvalue());
    assert_eq!(
        tsmigrate_functions::start::ALLOWED_SECRET_ARNS_ENV,
        "TSMIGRATE_ALLOWED_SECRET_ARNS"
    );
    // The catch-up schedule goes through start-migration, named after the stack.
    let schedule = &of_type(&t, "AWS::Scheduler::Schedule")[0].1["Properties"];
    assert_eq!(
        schedule["Name"].as_str(),
        Some("${AWS::StackName}-catch-up")
    );
    assert_eq!(
        schedule["Target"]["Arn"].as_str(),
        Some("StartMigrationFunction.Arn")
    );
}

#[test]
fn every_function_and_the_state_machine_log_to_a_retained_group_and_trace() {
    let t = template();
    let groups: BTreeSet<String> = of_type(&t, "AWS::Logs::LogGroup")
        .into_iter()
        .map(|(id, g)| {
            assert_eq!(
                g["Properties"]["RetentionInDays"].as_str(),
                Some("LogRetentionDays"),
                "{id} has no retention"
            );
            id
        })
        .collect();
    let functions = of_type(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 10);
    let mut used = BTreeSet::new();
    for (id, f) in &functions {
        let group = f["Properties"]["LoggingConfig"]["LogGroup"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no log group"));
        assert!(groups.contains(group), "{id} logs to {group}");
        assert!(used.insert(group.to_owned()), "{group} shared");
        let in_vpc = !f["Properties"]["VpcConfig"].is_badvalue();
        assert_eq!(in_vpc, id != "StartMigrationFunction", "{id} VPC placement");
    }
    assert_eq!(t["Globals"]["Function"]["Tracing"].as_str(), Some("Active"));
    let sm = &t["Resources"]["MigrationStateMachine"]["Properties"];
    assert_eq!(sm["Tracing"]["Enabled"].as_bool(), Some(true));
    let logging = &sm["Logging"];
    assert_eq!(logging["IncludeExecutionData"].as_bool(), Some(false));
    assert!(matches!(logging["Level"].as_str(), Some("ERROR" | "ALL")));
    let arn = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
        .as_str()
        .expect("state machine log group");
    assert!(groups.contains(arn.trim_end_matches(".Arn")), "{arn}");
}

#[test]
fn the_alarms_cover_failures_lag_and_stalls_on_an_encrypted_topic() {
    let t = template();
    let topic = &t["Resources"]["AlarmTopic"];
    assert_eq!(topic["Type"].as_str(), Some("AWS::SNS::Topic"));
    assert!(
        topic["Properties"]["KmsMasterKeyId"].as_str().is_some(),
        "the alarm topic must be encrypted"
    );

    // What each alarm watches: its metric names, dimensions and Metrics Insights expressions, in
    // one text.
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    let mut watched = Vec::new();
    for (id, alarm) in &alarms {
        let p = &alarm["Properties"];
        assert!(
            all_strings(&p["AlarmActions"]).contains(&"AlarmTopic".to_owned()),
            "{id} notifies nobody"
        );
        let metrics = all_strings(&p["MetricName"])
            .into_iter()
            .chain(all_strings(&p["Dimensions"]))
            .chain(all_strings(&p["Metrics"]))
            .collect::<Vec<_>>()
            .join(" ");
        watched.push((id.clone(), metrics));
    }
    let watching = |needle: &str| -> Vec<&str> {
        watched
            .iter()
            .filter(|(_, m)| m.contains(needle))
            .map(|(id, _)| id.as_str())
            .collect()
    };
    for metric in [
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
        "ExecutionThrottled",
        "Throttles",
        "Invocations",
        "ApproximateNumberOfMessagesVisible",
    ] {
        assert!(!watching(metric).is_empty(), "no alarm on {metric}");
    }
    // Errors: of every step, and of start-migration on its own.
    let errors = watching("Errors");
    assert!(errors.len() >= 2, "{errors:?}");
    let steps_errors = &watched
        .iter()
        .find(|(id, _)| id == "StepErrorsAlarm")
        .expect("StepErrorsAlarm")
        .1;
    for f in [
        "Precheck",
        "CreateSchema",
        "Begin",
        "PlanChunks",
        "CopyChunk",
        "Verify",
        "BinlogBatch",
        "Finish",
    ] {
        assert!(
            steps_errors.contains(&format!("{f}Function")),
            "{f} errors unwatched"
        );
    }
    assert!(watched
        .iter()
        .any(|(_, m)| m.contains("Errors") && m.contains("StartMigrationFunction")));

    // Lag and dirty rows read what BinlogBatch emits (namespace, metric names).
    let line = tsmigrate_functions::binlog_metrics(
        "shop",
        &json!({"events": 1, "rows_written": 1, "dirty": 0, "lag_seconds": 1}),
        1,
    )
    .expect("metrics line");
    let emitted: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let namespace = emitted["_aws"]["CloudWatchMetrics"][0]["Namespace"]
        .as_str()
        .expect("namespace");
    for metric in ["LagSeconds", "DirtyRows"] {
        assert!(emitted[metric].is_number(), "{metric} not emitted");
        let query = format!("({metric}) FROM SCHEMA({namespace}, MigrationId)");
        assert!(!watching(&query).is_empty(), "no alarm on {query}");
    }
    let lag = &alarms
        .iter()
        .find(|(_, a)| {
            all_strings(&a["Properties"]["Metrics"])
                .join(" ")
                .contains("LagSeconds")
        })
        .expect("lag alarm")
        .1["Properties"];
    assert_eq!(lag["Threshold"].as_str(), Some("LatencyAlertSeconds"));

    // Failed, timed-out and aborted executions are recorded by an EventBridge rule.
    let rules = of_type(&t, "AWS::Events::Rule");
    let ended = rules
        .iter()
        .find(|(_, r)| {
            r["Properties"]["EventPattern"]["detail-type"][0].as_str()
                == Some("Step Functions Execution Status Change")
        })
        .expect("execution status rule");
    let statuses = all_strings(&ended.1["Properties"]["EventPattern"]["detail"]["status"]);
    assert_eq!(statuses, ["FAILED", "TIMED_OUT", "ABORTED"]);
    // start-migration's failed asynchronous invokes go to a queue.
    let start = &t["Resources"]["StartMigrationFunction"]["Properties"];
    assert_eq!(
        start["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"].as_str(),
        Some("SQS")
    );
    assert_eq!(of_type(&t, "AWS::CloudWatch::Dashboard").len(), 1);
}

#[test]
fn ended_executions_reach_execution_ended_with_a_narrow_role() {
    let t = template();
    // The status-change rule keeps its log group and invokes the function, with retries and a
    // dead-letter queue.
    let rule = &t["Resources"]["ExecutionEndedRule"]["Properties"];
    assert_eq!(
        all_strings(&rule["EventPattern"]["detail"]["status"]),
        ["FAILED", "TIMED_OUT", "ABORTED"]
    );
    let targets = rule["Targets"].as_vec().expect("targets");
    let arns: Vec<&str> = targets.iter().filter_map(|x| x["Arn"].as_str()).collect();
    assert!(arns.contains(&"ExecutionEndedLogGroup.Arn"), "{arns:?}");
    let target = targets
        .iter()
        .find(|x| x["Arn"].as_str() == Some("ExecutionEndedFunction.Arn"))
        .expect("the rule invokes execution-ended");
    assert!(target["RetryPolicy"]["MaximumRetryAttempts"].as_i64() > Some(0));
    assert_eq!(
        target["DeadLetterConfig"]["Arn"].as_str(),
        Some("ExecutionEndedFailuresQueue.Arn")
    );
    let permission = &t["Resources"]["ExecutionEndedPermission"]["Properties"];
    assert_eq!(
        permission["Principal"].as_str(),
        Some("events.amazonaws.com")
    );
    assert_eq!(
        permission["SourceArn"].as_str(),
        Some("ExecutionEndedRule.Arn")
    );

    // The function: the bootstrap's execution-ended job, in the VPC, its own log group, failed
    // asynchronous invokes kept in the same queue.
    let f = &t["Resources"]["ExecutionEndedFunction"]["Properties"];
    assert_eq!(
        f["Environment"]["Variables"]["TSMIGRATE_FUNCTION"].as_str(),
        Some("execution-ended")
    );
    assert!(!f["VpcConfig"].is_badvalue());
    assert_eq!(f["Role"].as_str(), Some("ExecutionEndedRole.Arn"));
    assert_eq!(
        f["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"].as_str(),
        Some("ExecutionEndedFailuresQueue.Arn")
    );

    // The role: the allowed secrets (the Tablestore keys), KMS through Secrets Manager,
    // DescribeExecution on this machine's executions, its queue, its logs; nothing else.
    let role = &t["Resources"]["ExecutionEndedRole"]["Properties"];
    // `!If [HasKmsKey, {statement}, NoValue]` reads as a list holding the statement.
    let role_statements: Vec<&Yaml> = statements(&role["Policies"])
        .into_iter()
        .flat_map(|s| match s.as_vec() {
            Some(branches) => branches.iter().filter(|b| b.as_hash().is_some()).collect(),
            None => vec![s],
        })
        .collect();
    let granted: BTreeSet<String> = role_statements.iter().flat_map(|s| actions(s)).collect();
    let expected: BTreeSet<String> = [
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
        "states:DescribeExecution",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(granted, expected);
    let resource_of = |action: &str| -> Vec<String> {
        role_statements
            .iter()
            .filter(|s| actions(s).contains(&action.to_owned()))
            .flat_map(|s| all_strings(&s["Resource"]))
            .collect()
    };
    assert_eq!(
        resource_of("secretsmanager:GetSecretValue"),
        ["SourceSecretArns"]
    );
    assert_eq!(resource_of("kms:Decrypt"), ["KmsKeyArn"]);
    let describe = resource_of("states:DescribeExecution");
    assert_eq!(describe.len(), 1);
    assert!(describe[0].ends_with(":execution:${AWS::StackName}-migration:*"));
    assert_eq!(
        resource_of("logs:PutLogEvents"),
        ["ExecutionEndedFunctionLogGroup.Arn"]
    );
    assert_eq!(
        all_strings(&role["ManagedPolicyArns"])[0],
        "UseVpc",
        "VPC access only under UseVpc"
    );

    // Its failures page: errors, and events that failed every retry.
    let alarm_on = |metric: &str, dimension: &str| {
        of_type(&t, "AWS::CloudWatch::Alarm").iter().any(|(_, a)| {
            let p = &a["Properties"];
            p["MetricName"].as_str() == Some(metric)
                && all_strings(&p["Dimensions"]).contains(&dimension.to_owned())
        })
    };
    assert!(alarm_on("Errors", "ExecutionEndedFunction"));
    assert!(alarm_on(
        "ApproximateNumberOfMessagesVisible",
        "ExecutionEndedFailuresQueue.QueueName"
    ));
}
