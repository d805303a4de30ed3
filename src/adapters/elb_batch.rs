//! DescribeTargetGroups for any number of target groups over any [`Elb`]: 20 ARNs a call;
//! a call fails whole when one ARN does not exist, so a failed batch is asked one by one and
//! one bad ARN never hides the others.

use std::collections::HashMap;

use super::{AwsError, Elb, GroupInfo};

/// How many ARNs one DescribeTargetGroups call asks for (AWS's limit is 20).
pub const DESCRIBE_BATCH: usize = 20;

/// Each target group's type and health check, or why it could not be read.
pub async fn describe_groups(
    elb: &dyn Elb,
    arns: &[String],
) -> HashMap<String, Result<GroupInfo, AwsError>> {
    let mut out = HashMap::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        match one_call(elb, batch).await {
            Ok(found) => out.extend(found),
            Err(_) if batch.len() > 1 => {
                for arn in batch {
                    match one_call(elb, std::slice::from_ref(arn)).await {
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
async fn one_call(
    elb: &dyn Elb,
    arns: &[String],
) -> Result<Vec<(String, Result<GroupInfo, AwsError>)>, AwsError> {
    let mut found: HashMap<String, GroupInfo> = elb
        .describe_target_groups(arns)
        .await?
        .into_iter()
        .collect();
    Ok(arns
        .iter()
        .map(|arn| {
            let info = found.remove(arn).ok_or_else(|| {
                AwsError::new(
                    "DescribeTargetGroups",
                    arn,
                    Some("TargetGroupNotFound"),
                    "no such target group".into(),
                )
            });
            (arn.clone(), info)
        })
        .collect())
}
