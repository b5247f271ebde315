select customer_id, name from {{ source('crm', 'customers') }}
