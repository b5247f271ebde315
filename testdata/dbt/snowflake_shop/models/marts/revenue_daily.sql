select ordered_at::date as day, sum(amount) as revenue from {{ ref('orders') }} group by 1
