select customer_id, count(*) as orders, sum(amount) as lifetime_value
from {{ ref('stg_orders') }} group by customer_id
