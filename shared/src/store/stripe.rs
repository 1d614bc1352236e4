//! What the Stripe webhook remembers between events: which user a payment
//! intent belongs to (refunds and disputes name only the payment) and, where
//! its checkout was refused, why; the last applied event of each
//! subscription (events may arrive out of order); and each user's active
//! subscriptions with their plans (a user may hold several, or replace one).

use super::attr::{ENDED_FOR_GOOD, KIND, LAST_CREATED, PK, REFUSED, SUBSCRIPTIONS, USER_ID, VERSION};
use super::items::{get_n, get_s};
use super::keys::{payment_key, s, Item};
use super::{classify, unless_condition_failed, Store, StoreError};
use std::collections::BTreeMap;

/// What the webhook knows of a subscription and of its user, read with an
/// event of that subscription (and written back in its transaction, see
/// [`super::Write::Subscription`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionFacts {
    /// The `created` of the subscription's latest applied event, if one was.
    pub last_created: Option<i64>,
    /// Whether it ended for good (deleted, canceled): none of its events
    /// changes anything any more.
    pub done: bool,
    /// The user's active subscriptions, each with its price.
    pub active: BTreeMap<String, String>,
    /// The version of the user's record, as read; `None` where there is none yet.
    pub version: Option<i64>,
}

/// Decodes the subscription's item and its user's, either of them missing.
pub(crate) fn decode_subscription(
    subscription: Option<&Item>,
    user: Option<&Item>,
) -> Result<SubscriptionFacts, StoreError> {
    let mut active = BTreeMap::new();
    if let Some(map) = user.and_then(|item| item.get(SUBSCRIPTIONS)) {
        let map = map.as_m().map_err(|_| StoreError::Corrupt(format!("{SUBSCRIPTIONS} is not a map")))?;
        for (subscription, price) in map {
            let price =
                price.as_s().map_err(|_| StoreError::Corrupt(format!("{SUBSCRIPTIONS}: a price is not a string")))?;
            active.insert(subscription.clone(), price.clone());
        }
    }
    Ok(SubscriptionFacts {
        last_created: subscription.map(|item| get_n(item, LAST_CREATED)).transpose()?,
        done: subscription.and_then(|item| item.get(ENDED_FOR_GOOD)).is_some_and(|v| v.as_bool().is_ok_and(|b| *b)),
        active,
        // An item without a version was never written under one: as none.
        version: user.filter(|item| item.contains_key(VERSION)).map(|item| get_n(item, VERSION)).transpose()?,
    })
}

/// A payment intent the webhook has seen the checkout of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentOwner {
    /// The user the checkout named.
    pub user_id: String,
    /// The error code the checkout's purchase was refused with: it bought nothing.
    pub refused: Option<String>,
}

impl Store {
    /// Records that `payment_intent` is `user_id`'s (and, written whole, that
    /// its checkout is not refused, or no longer); `Ok(Err(..))` when it is
    /// already another user's.
    pub async fn remember_payment(
        &self,
        payment_intent: &str,
        user_id: &str,
    ) -> Result<Result<(), String>, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some({
                let mut item = payment_key(payment_intent);
                item.insert(KIND.to_owned(), s("stripe_payment"));
                item.insert(USER_ID.to_owned(), s(user_id));
                item
            }))
            .condition_expression(format!("attribute_not_exists({PK}) OR {USER_ID} = :user"))
            .expression_attribute_values(":user", s(user_id))
            .send()
            .await;
        Ok(match unless_condition_failed(result)? {
            Some(_) => Ok(()),
            None => Err(format!("payment intent {payment_intent} belongs to another user")),
        })
    }

    /// Records why `payment_intent`'s checkout was refused (an error code),
    /// so that a refund or dispute of it is known to have no purchase to
    /// reverse. Nothing where the payment is not `user_id`'s.
    pub async fn refuse_payment(&self, payment_intent: &str, user_id: &str, code: &str) -> Result<(), StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(payment_key(payment_intent)))
            .update_expression(format!("SET {REFUSED} = :code"))
            .condition_expression(format!("{USER_ID} = :user"))
            .expression_attribute_values(":code", s(code))
            .expression_attribute_values(":user", s(user_id))
            .send()
            .await;
        unless_condition_failed(result).map(|_| ())
    }

    /// Whose a payment intent is, if the webhook has seen its checkout.
    pub async fn payment_owner(&self, payment_intent: &str) -> Result<Option<PaymentOwner>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(payment_key(payment_intent)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = out.item else { return Ok(None) };
        let user_id = get_s(&item, USER_ID)?.to_owned();
        let refused = item.get(REFUSED).and_then(|v| v.as_s().ok()).cloned();
        Ok(Some(PaymentOwner { user_id, refused }))
    }
}
