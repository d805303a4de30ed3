//! Describe calls for any number of target groups over any [`Elb`]: 20 ARNs a call (AWS's
//! limit for DescribeTargetGroups and DescribeTags); a call fails whole when one ARN does not
//! exist, so a failed batch is asked one by one and one bad ARN never hides the others.

use std::collections::HashMap;
use std::future::Future;

use super::{AwsError, Elb, GroupInfo, Tags};

/// How many ARNs one describe call asks for (AWS's limit is 20).
pub const DESCRIBE_BATCH: usize = 20;

/// Each target group's type and health check, or why it could not be read.
pub async fn describe_groups(
    elb: &dyn Elb,
    arns: &[String],
) -> HashMap<String, Result<GroupInfo, AwsError>> {
    batched(arns, "DescribeTargetGroups", |batch| async move {
        elb.describe_target_groups(&batch).await
    })
    .await
}

/// Each target group's tags, or why they could not be read.
pub async fn describe_tags(
    elb: &dyn Elb,
    arns: &[String],
) -> HashMap<String, Result<Tags, AwsError>> {
    batched(arns, "DescribeTags", |batch| async move {
        elb.tags(&batch).await
    })
    .await
}

async fn batched<T, F, Fut>(
    arns: &[String],
    operation: &'static str,
    call: F,
) -> HashMap<String, Result<T, AwsError>>
where
    T: Clone,
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<(String, T)>, AwsError>>,
{
    let mut out = HashMap::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        match one_call(batch, operation, &call).await {
            Ok(found) => out.extend(found),
            Err(_) if batch.len() > 1 => {
                for arn in batch {
                    match one_call(std::slice::from_ref(arn), operation, &call).await {
                        Ok(found) => out.extend(found),
                        Err(e) => {
                            out.insert(arn.clone(), Err(e));
                        }
                    }
                }
            }
            Err(e) => {
                for arn in batch {
                    out.insert(arn.clone(), Err(e.clone()));
                }
            }
        }
    }
    out
}

/// One call; an ARN the answer leaves out is reported as not found.
async fn one_call<T, F, Fut>(
    arns: &[String],
    operation: &'static str,
    call: &F,
) -> Result<Vec<(String, Result<T, AwsError>)>, AwsError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<(String, T)>, AwsError>>,
{
    let mut found: HashMap<String, T> = call(arns.to_vec()).await?.into_iter().collect();
    Ok(arns
        .iter()
        .map(|arn| {
            let info = found.remove(arn).ok_or_else(|| {
                AwsError::new(
                    operation,
                    arn,
                    Some("TargetGroupNotFound"),
                    "no such target group".into(),
                )
            });
            (arn.clone(), info)
        })
        .collect())
}
