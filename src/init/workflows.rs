//! The consumer workflows `init` writes under `.github/workflows/`: ci on
//! pull requests, intraday on a schedule, backfill daily, maintain weekly.

use super::analytics_yml::yaml;
use crate::project::targets::IcebergYaml;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The consumer workflows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Workflow {
    Ci,
    Intraday,
    Backfill,
    Maintain,
}

pub(super) const WORKFLOWS: &[Workflow] = &[
    Workflow::Ci,
    Workflow::Intraday,
    Workflow::Backfill,
    Workflow::Maintain,
];

impl Workflow {
    pub(super) fn name(self) -> &'static str {
        match self {
            Workflow::Ci => "ci",
            Workflow::Intraday => "intraday",
            Workflow::Backfill => "backfill",
            Workflow::Maintain => "maintain",
        }
    }
}

/// How the warehouse target's `${VAR}`s reach the run: the action's inputs
/// for the standard variables, the step's `env:` for others.
#[derive(Debug, Default)]
pub(super) struct CatalogInputs {
    inputs: Vec<(&'static str, String)>,
    env: Vec<String>,
}

/// The standard variables and the inputs that set them.
const STANDARD: &[(&str, &str)] = &[
    ("ICEBERG_REST_ENDPOINT", "catalog-uri"),
    ("ICEBERG_CREDENTIAL", "catalog-credential"),
    ("ICEBERG_TOKEN", "catalog-token"),
    ("ICEBERG_WAREHOUSE", "warehouse"),
    ("AWS_ENDPOINT_URL_S3", "s3-endpoint"),
    ("AWS_REGION", "s3-region"),
    ("AWS_ACCESS_KEY_ID", "s3-access-key-id"),
    ("AWS_SECRET_ACCESS_KEY", "s3-secret-access-key"),
];

pub(super) fn catalog_inputs(catalog: &IcebergYaml) -> CatalogInputs {
    let s3 = &catalog.s3;
    let mut names = BTreeSet::new();
    for text in [Some(&catalog.uri)]
        .into_iter()
        .chain([
            catalog.warehouse.as_ref(),
            catalog.credential.as_ref(),
            catalog.token.as_ref(),
            s3.endpoint.as_ref(),
            s3.region.as_ref(),
            s3.access_key_id.as_ref(),
            s3.secret_access_key.as_ref(),
        ])
        .flatten()
    {
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let name = after[..end].split(":-").next().unwrap_or_default();
            if !name.is_empty() {
                names.insert(name.to_string());
            }
            rest = &after[end + 1..];
        }
    }
    let mut out = CatalogInputs::default();
    for (var, input) in STANDARD {
        if names.remove(*var) {
            out.inputs.push((input, var.to_string()));
        }
    }
    out.env = names.into_iter().collect();
    out
}

pub(super) fn workflow(kind: Workflow, project_dir: &str, catalog: &CatalogInputs) -> String {
    let (about, on, permissions, timeout, extra) = match kind {
        Workflow::Ci => (
            "On every pull request: build every model in memory and run every test;\n\
             # broken SQL or a failing test fails the check, with annotations on the files.",
            "  pull_request:\n  workflow_dispatch:\n",
            "  contents: read\n",
            20,
            "",
        ),
        Workflow::Intraday => (
            "Every 30 minutes: take the newest source files, build the models\n\
             # incrementally into the Iceberg warehouse (no tests), publish the intraday files.",
            "  schedule:\n    - cron: \"*/30 * * * *\"\n  workflow_dispatch:\n",
            "  contents: write   # commit the dashboard to the pages branch\n  \
             pages: read       # the dashboard address (pages-url output)\n",
            25,
            "",
        ),
        Workflow::Backfill => (
            "Daily: backfill history and reference data, rebuild, run every test against\n\
             # the warehouse, and publish every dashboard file only if the tests pass.",
            "  schedule:\n    - cron: \"15 5 * * *\"\n  workflow_dispatch:\n    inputs:\n      \
             full-refresh:\n        description: Rebuild incremental models from scratch\n        \
             type: boolean\n        default: false\n",
            "  contents: write   # commit the dashboard to the pages branch\n  \
             pages: read       # the dashboard address (pages-url output)\n",
            120,
            "          full-refresh: ${{ inputs.full-refresh || false }}\n",
        ),
        Workflow::Maintain => (
            "Weekly: compact the small files intraday runs leave in the Iceberg tables,\n\
             # expire old snapshots and delete files no snapshot uses.",
            "  schedule:\n    - cron: \"40 3 * * 0\"\n  workflow_dispatch:\n",
            "  contents: read\n",
            60,
            "",
        ),
    };
    let name = kind.name();
    let concurrency = match kind {
        Workflow::Ci => "analytics-ci-${{ github.ref }}\n  cancel-in-progress: true".to_string(),
        _ => format!("analytics-{name}\n  cancel-in-progress: false"),
    };
    let mut with = format!(
        "          mode: {name}\n          project-dir: {}\n{extra}",
        yaml(project_dir)
    );
    let mut env = String::new();
    if !matches!(kind, Workflow::Ci) {
        for (input, var) in &catalog.inputs {
            let _ = writeln!(with, "          {input}: ${{{{ secrets.{var} }}}}");
        }
        for var in &catalog.env {
            let _ = writeln!(env, "          {var}: ${{{{ secrets.{var} }}}}");
        }
    }
    let env = if env.is_empty() {
        String::new()
    } else {
        format!("        env:\n{env}")
    };
    format!(
        "# Written by `analytics init`. {about}\n\
         # Each workflow has its own concurrency group: runs of different workflows may\n\
         # overlap safely (every Iceberg commit is atomic), runs of one wait in turn.\n\
         name: analytics {name}\n\n\
         on:\n{on}\n\
         permissions:\n{permissions}\n\
         concurrency:\n  group: {concurrency}\n\n\
         jobs:\n  {name}:\n    runs-on: ubuntu-latest\n    timeout-minutes: {timeout}\n    \
         steps:\n      - uses: actions/checkout@v4\n      \
         - uses: analytics-action/analytics-action@v1\n{env}        with:\n{with}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflows_take_standard_variables_as_inputs_and_others_as_env() {
        let catalog = IcebergYaml {
            uri: "${LAKE_URI:-https://x}".into(),
            token: Some("${ICEBERG_TOKEN}".into()),
            ..Default::default()
        };
        let inputs = catalog_inputs(&catalog);
        let text = workflow(Workflow::Intraday, "analytics", &inputs);
        assert!(
            text.contains("catalog-token: ${{ secrets.ICEBERG_TOKEN }}"),
            "{text}"
        );
        assert!(text.contains("LAKE_URI: ${{ secrets.LAKE_URI }}"), "{text}");
        let ci = workflow(Workflow::Ci, ".", &inputs);
        assert!(!ci.contains("secrets."), "{ci}");
    }
}
